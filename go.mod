module github.com/sparkguard/sparkguard

go 1.26.0
