package webex

import "testing"

func TestParseID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id, kind, uuid string
		ok                   bool
	}{
		{"person from the samples", "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8zMDBjMDk3My1kYzM1LTRiNDAtYWUxYS0zNjY0YjMzNjFkZDU", KindPeople, "300c0973-dc35-4b40-ae1a-3664b3361dd5", true},
		{"padded", FormatID(KindRoom, "abc") + "=", KindRoom, "abc", true},
		{"round trip", FormatID(KindMessage, "m-1"), KindMessage, "m-1", true},
		{"not base64", "not*base64", "", "", false},
		{"other scheme", FormatID("X", "y")[:4] + "AAAA", "", "", false},
		{"no uuid", FormatID(KindPeople, ""), "", "", false},
		{"empty", "", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kind, uuid, ok := ParseID(tc.id)
			if kind != tc.kind || uuid != tc.uuid || ok != tc.ok {
				t.Errorf("ParseID(%q) = %q, %q, %v; want %q, %q, %v", tc.id, kind, uuid, ok, tc.kind, tc.uuid, tc.ok)
			}
		})
	}
}
