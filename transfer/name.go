package transfer

import (
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxSafeNameBytes bounds a sanitized file name (most file systems allow
// 255 bytes per name).
const MaxSafeNameBytes = 240

// SanitizeName turns a name received from a peer into a single safe file
// name for any common file system:
//
//   - path components are joined with '_' after dropping "." and ".."
//     ("../../etc/passwd" becomes "etc_passwd"), and characters Windows
//     forbids (<>:"|?*) become '_', so the name never leaves the
//     download directory;
//   - control and format characters (including bidirectional overrides
//     that disguise extensions) and invalid UTF-8 are removed;
//   - leading dots and spaces (hidden files, "..") and trailing dots and
//     spaces (stripped by Windows) are removed;
//   - reserved device names (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with any
//     extension) get a leading '_';
//   - the result is at most MaxSafeNameBytes, cut at a character boundary,
//     keeping a short extension;
//   - an empty result becomes "file".
func SanitizeName(name string) string {
	// Path components "", "." and ".." are dropped; the rest are joined
	// with '_': "../../etc/passwd" becomes "etc_passwd".
	parts := strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' })
	parts = slices.DeleteFunc(parts, func(p string) bool { return p == "." || p == ".." })
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(strings.Join(parts, "_"), "") {
		switch {
		case strings.ContainsRune(`<>:"|?*`, r):
			b.WriteByte('_')
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError:
			// dropped
		default:
			b.WriteRune(r)
		}
	}
	s := strings.TrimLeft(b.String(), ". \u00a0")
	s = strings.TrimRight(s, ". \u00a0")
	if isReservedName(s) {
		s = "_" + s
	}
	s = truncateName(s, MaxSafeNameBytes)
	if s == "" {
		return "file"
	}
	return s
}

func isReservedName(s string) bool {
	base := strings.ToUpper(s)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	base = strings.TrimRight(base, " ")
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) && base[3] >= '0' && base[3] <= '9' {
		return true
	}
	return false
}

// truncateName cuts s to max bytes, keeping an extension of up to 16 bytes.
func truncateName(s string, max int) string {
	if len(s) <= max {
		return s
	}
	ext := filepath.Ext(s)
	if len(ext) > 16 || len(ext) == len(s) {
		ext = ""
	}
	stem := clip(s[:len(s)-len(ext)], max-len(ext))
	return strings.TrimRight(stem, ". ") + ext
}

// numberedName returns "stem (n).ext" for n > 0.
func numberedName(name string, n int) string {
	if n == 0 {
		return name
	}
	ext := filepath.Ext(name)
	if len(ext) == len(name) || len(ext) > 16 {
		ext = ""
	}
	suffix := " (" + itoa(n) + ")"
	stem := clip(name[:len(name)-len(ext)], MaxSafeNameBytes-len(ext)-len(suffix))
	return stem + suffix + ext
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
