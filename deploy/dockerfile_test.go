package deploy

import (
	"bufio"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// dockerfiles are the images' Dockerfiles, by binary.
var dockerfiles = map[string]string{
	"ingress":   "services/ingress/Dockerfile",
	"authz":     "services/authz/Dockerfile",
	"responder": "services/responder/Dockerfile",
	"webexsim":  "tools/webexsim/Dockerfile",
}

// TestDockerfileBuildStage replays each Dockerfile's build stage without a
// container engine: the files its COPY lines take from the build context
// (the repository root minus .dockerignore) go into an empty directory, and
// its `go mod download` and `go build` run there with the machine's module
// cache and proxy (as the image build would). A COPY that misses a module, a .dockerignore that drops a
// needed file, or a wrong package path fails here, not in CI's image build.
func TestDockerfileBuildStage(t *testing.T) {
	ignore := readDockerignore(t, "../.dockerignore")
	for bin, df := range dockerfiles {
		t.Run(bin, func(t *testing.T) {
			stage := buildStage(t, filepath.Join("..", df))
			work := t.TempDir()
			out := t.TempDir()
			for _, c := range stage.copies {
				copyFromContext(t, "..", c[0], filepath.Join(work, stage.workdir, c[1]), c[1], ignore)
			}
			for _, run := range stage.runs {
				run = strings.ReplaceAll(run, "${VERSION}", "test")
				run = strings.ReplaceAll(run, "/out/", out+"/")
				cmd := exec.Command("sh", "-ec", run)
				cmd.Dir = filepath.Join(work, stage.workdir)
				cmd.Env = append(os.Environ(), "GOWORK=", "GOFLAGS=-mod=readonly -buildvcs=false", "GOTOOLCHAIN=local")
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("RUN %s: %v\n%s", run, err, b)
				}
			}
			if _, err := os.Stat(filepath.Join(out, bin)); err != nil {
				t.Fatalf("the build stage made no /out/%s: %v", bin, err)
			}
		})
	}
}

// stage is what the test replays of a Dockerfile's first (build) stage.
type stage struct {
	workdir string
	copies  [][2]string // source pattern, destination
	runs    []string    // shell commands, --mount flags removed
}

// buildStage reads the first stage of a Dockerfile: WORKDIR, COPY and RUN,
// with line continuations joined.
func buildStage(t *testing.T, dockerfile string) stage {
	t.Helper()
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var st stage
	var lines []string
	cur := ""
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		lines = append(lines, cur+line)
		cur = ""
	}
	froms := 0
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms++
		case "WORKDIR":
			st.workdir = f[1]
		case "COPY":
			if froms != 1 || strings.HasPrefix(f[1], "--from") {
				continue
			}
			dest := f[len(f)-1]
			for _, src := range f[1 : len(f)-1] {
				st.copies = append(st.copies, [2]string{src, dest})
			}
		case "RUN":
			if froms != 1 {
				continue
			}
			var words []string
			for _, w := range f[1:] {
				if !strings.HasPrefix(w, "--mount=") {
					words = append(words, w)
				}
			}
			st.runs = append(st.runs, strings.Join(words, " "))
		}
	}
	if froms < 2 || len(st.copies) == 0 || len(st.runs) == 0 {
		t.Fatalf("%s: %d stages, %d copies, %d runs: not a multi-stage Go build", dockerfile, froms, len(st.copies), len(st.runs))
	}
	return st
}

// copyFromContext copies what `COPY pattern dest` takes from the context.
// Like BuildKit, a wildcard may match nothing.
func copyFromContext(t *testing.T, context, pattern, dest, rawDest string, ignore *dockerignore) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(context, pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 && !strings.ContainsAny(pattern, "*?[") {
		t.Fatalf("COPY %s: not in the build context", pattern)
	}
	for _, m := range matches {
		rel, _ := filepath.Rel(context, m)
		info, err := os.Stat(m)
		if err != nil {
			t.Fatal(err)
		}
		if !info.IsDir() {
			if ignore.excluded(filepath.ToSlash(rel)) {
				if !strings.ContainsAny(pattern, "*?[") {
					t.Fatalf("COPY %s: .dockerignore excludes it", pattern)
				}
				continue
			}
			target := dest
			if strings.HasSuffix(rawDest, "/") {
				target = filepath.Join(dest, filepath.Base(m))
			}
			copyFile(t, m, target)
			continue
		}
		err = filepath.WalkDir(m, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			r, _ := filepath.Rel(context, p)
			if ignore.excluded(filepath.ToSlash(r)) {
				return nil
			}
			inner, _ := filepath.Rel(m, p)
			copyFile(t, p, filepath.Join(dest, inner))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dockerignore is the subset of .dockerignore's syntax the repository uses:
// patterns of path.Match per path element, "**/" for any directories, a
// trailing "/" or a directory match excluding everything under it, "!" to
// re-include; the last matching line wins.
type dockerignore struct{ rules []ignoreRule }

type ignoreRule struct {
	pattern string
	include bool
}

func readDockerignore(t *testing.T, file string) *dockerignore {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := &dockerignore{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		if strings.HasPrefix(line, "!") {
			r.include, line = true, line[1:]
		}
		r.pattern = strings.TrimSuffix(strings.TrimPrefix(path.Clean(line), "/"), "/")
		d.rules = append(d.rules, r)
	}
	return d
}

func (d *dockerignore) excluded(rel string) bool {
	out := false
	for _, r := range d.rules {
		if matchIgnore(r.pattern, rel) {
			out = !r.include
		}
	}
	return out
}

// matchIgnore reports whether pattern matches rel or one of its parent
// directories.
func matchIgnore(pattern, rel string) bool {
	parts := strings.Split(rel, "/")
	for n := 1; n <= len(parts); n++ {
		prefix := strings.Join(parts[:n], "/")
		if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
			for i := range n {
				if ok, _ := path.Match(rest, strings.Join(parts[i:n], "/")); ok {
					return true
				}
			}
			continue
		}
		if ok, _ := path.Match(pattern, prefix); ok {
			return true
		}
	}
	return false
}
