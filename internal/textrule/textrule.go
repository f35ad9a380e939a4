// Package textrule holds the rule for the short texts Guard keeps and
// shows (in pages, logs and audit exports) that auth.Printable states, for
// the packages that must keep it too but do not import auth (rbac, for an
// approval's target).
package textrule

import "unicode"

// Printable reports whether s holds no character that changes how text
// around it is shown: no control character (C0, DEL or C1, such as NEL
// and CSI), no line or paragraph separator, no bidirectional embedding,
// override or isolate (U+202A..U+202E, U+2066..U+2069).
func Printable(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) ||
			'\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069' {
			return false
		}
	}
	return true
}
