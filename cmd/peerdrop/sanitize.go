package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Peer text on the terminal. A contact's device names, file names, CANCEL
// and refusal reasons are the contact's words: printed raw, a hostile one
// clears the screen, sets the window title, or reorders a line with bidi
// overrides. Everything the CLI prints for people goes through
// termSafeArgs (printf, notef, prompts, progress labels, the error and
// its hint), which shows such characters as escapes; JSON output carries
// the exact text, with those characters escaped as \uXXXX (jsonSafe).

// unsafeRune reports whether r may act on a terminal or reorder text:
// controls (C0 but tab, DEL, C1), Unicode format characters (bidi
// embeddings, overrides and isolates, zero-width joiners, …), line and
// paragraph separators, and private or unassigned code points.
func unsafeRune(r rune) bool {
	switch {
	case r == '\t':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == '\u2028', r == '\u2029':
		return true
	case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Co, r), unicode.Is(unicode.Cs, r):
		return true
	case r >= 0x80 && !unicode.IsGraphic(r) && !unicode.IsSpace(r):
		return true
	}
	return false
}

// termSafe shows the unsafe characters of s, and its invalid UTF-8, as Go
// escapes (\x1b, \u202e); newlines included, so peer text stays on its
// line.
func termSafe(s string) string {
	clean := true
	for i, r := range s {
		if unsafeRune(r) || r == utf8.RuneError && isInvalid(s[i:]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func isInvalid(s string) bool {
	_, size := utf8.DecodeRuneInString(s)
	return size <= 1
}

// termSafeArgs makes printf arguments safe: strings and errors (where
// peer text travels) through termSafe; numbers, byte slices (digests
// printed with %x), IDs, states, durations and the rest as they are, so
// that every verb keeps its meaning.
func termSafeArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = termSafe(v)
		case error:
			out[i] = termSafe(v.Error())
		default:
			out[i] = a
		}
	}
	return out
}

// jsonSafe escapes, in encoded JSON, the characters json.Marshal leaves
// raw that could act on a terminal that shows the output (C1 controls,
// format characters, separators): the decoded text is unchanged.
func jsonSafe(b []byte) []byte {
	s := string(b)
	need := false
	for _, r := range s {
		if r >= 0x80 && unsafeRune(r) {
			need = true
			break
		}
	}
	if !need {
		return b
	}
	var out strings.Builder
	for _, r := range s {
		if r >= 0x80 && unsafeRune(r) && r <= 0xffff {
			fmt.Fprintf(&out, `\u%04x`, r)
			continue
		}
		if r > 0xffff && unsafeRune(r) {
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
			continue
		}
		out.WriteRune(r)
	}
	return []byte(out.String())
}
