package main

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"holiday.jpg":                     "holiday.jpg",
		"naïve café 写真 🎉":                 "naïve café 写真 🎉",
		"tab\tok":                         "tab\tok",
		"\x1b[2J\x1b]0;pwned\x07":         `\x1b[2J\x1b]0;pwned\x07`,
		"line\nbreak\r":                   `line\nbreak\r`,
		"evil\u202egpj.exe":               `evil\u202egpj.exe`,
		"\u2066isolate\u2069 zero\u200bw": `\u2066isolate\u2069 zero\u200bw`,
		"c1\u009b31m del\x7f":             `c1\u009b31m del\x7f`,
		"bad \xff utf8":                   `bad \xff utf8`,
		"private \U000F0000":              `private \U000f0000`,
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzTermSafe: whatever a peer sends, what reaches the terminal has no
// character that acts on it, and JSON keeps the exact text.
func FuzzTermSafe(f *testing.F) {
	f.Add("\x1b]0;title\x07\u202e\u0085\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := termSafe(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q", s)
		}
		for _, r := range out {
			if unsafeRune(r) {
				t.Fatalf("termSafe(%q) left %U", s, r)
			}
		}
		b, _ := json.Marshal(map[string]string{"v": s})
		safe := jsonSafe(b)
		for _, r := range string(safe) {
			if r >= 0x80 && unsafeRune(r) {
				t.Fatalf("jsonSafe left %U", r)
			}
		}
		var back, want map[string]string
		if err := json.Unmarshal(safe, &back); err != nil {
			t.Fatalf("jsonSafe broke the JSON of %q: %v: %s", s, err, safe)
		}
		_ = json.Unmarshal(b, &want)
		if back["v"] != want["v"] {
			t.Fatalf("jsonSafe changed the text: %q != %q", back["v"], want["v"])
		}
		if strings.ContainsRune(string(safe), 0x1b) {
			t.Fatal("an ESC in JSON output")
		}
	})
}
