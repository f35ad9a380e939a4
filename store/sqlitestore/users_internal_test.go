package sqlitestore

import (
	"strconv"
	"testing"
)

// FuzzUnpackSummaries: whatever the chunk, unpack returns users or
// errPacked, and never panics; a chunk built as the query builds it comes
// back as the users it was built from.
func FuzzUnpackSummaries(f *testing.F) {
	f.Add(2, "1,2", "1,1", "0,1", "6,6", "1,0", ",5", "3,4", "7,", ",8", "0,1", "9,", "aeactivebbcnactive", "id", "x,y", int64(3))
	f.Add(0, "", "", "", "", "", "", "", "", "", "", "", "", "", "", int64(0))
	f.Add(1, "1,", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "abcd", "\x00,", "9,9,", int64(-1))
	f.Fuzz(func(t *testing.T, n int, l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, texts, id, name string, micros int64) {
		c := packedChunk{n: n, lists: [11]string{l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10}, texts: texts}
		if us, err := c.unpack(nil); err != nil && err != errPacked {
			t.Fatalf("unpack(%+v) = %v, %v", c, us, err)
		}
		// Two users: (id, name), whose email is unverified and who was
		// reactivated, and ("", "") without a password.
		m := strconv.FormatInt(micros, 10)
		c = packedChunk{n: 2, texts: id + "e" + name + "active" + "" + "" + "" + "x",
			lists: [11]string{strconv.Itoa(len(id)) + ",0", "1,0", strconv.Itoa(len(name)) + ",0", "6,1", "1,0", "," + m, m + ",0", ",", m + ",", "1,0", m + ","}}
		us, err := c.unpack(nil)
		if err != nil || len(us) != 2 {
			t.Fatalf("unpack(%+v) = %v, %v", c, us, err)
		}
		u, v := us[0], us[1]
		if u.ID != id || u.Email != "e" || u.Name != name || u.Status != "active" || !u.HasPassword ||
			!u.PasswordChangedAt.IsZero() || !u.LastLoginAt.IsZero() || u.CreatedAt.UnixMicro() != micros || u.LastSSOAt.UnixMicro() != micros || !u.EmailUnverified ||
			u.ReactivatedAt.UnixMicro() != micros {
			t.Errorf("first user %+v", u)
		}
		if v.ID != "" || v.Email != "" || v.Name != "" || v.Status != "x" || v.HasPassword ||
			v.PasswordChangedAt.UnixMicro() != micros || !v.LastLoginAt.IsZero() || v.CreatedAt.UnixMicro() != 0 || !v.LastSSOAt.IsZero() || v.EmailUnverified ||
			!v.ReactivatedAt.IsZero() {
			t.Errorf("second user %+v", v)
		}
	})
}
