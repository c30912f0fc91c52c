package sessionhttp

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestWhoamiEncoding: the hand-written encoder produces exactly encoding/json's output.
func TestWhoamiEncoding(t *testing.T) {
	strs := []string{"", "plain", `quote " backslash \ `, "<script>&amp;</script>", "tab\tnew\nline\r", "\x00\x01\x1f",
		"ünïcödé 密码", "line\u2028sep\u2029", "bad \xff utf8", "emoji 🎉"}
	loc := time.FixedZone("X", 5*3600+30*60)
	for i := range 2000 {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		pick := func() string { return strs[r.IntN(len(strs))] }
		tm := func() time.Time {
			return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In([]*time.Location{time.UTC, loc}[r.IntN(2)])
		}
		var w whoami
		w.Session.ID, w.Session.CreatedAt, w.Session.LastActiveAt, w.Session.ExpiresAt, w.Session.AuthTime = uuid.New(), tm(), tm(), tm(), tm()
		switch r.IntN(3) {
		case 0:
			w.Session.Methods = nil
		case 1:
			w.Session.Methods = []string{}
		default:
			w.Session.Methods = []string{"password", pick()}
		}
		w.Session.AAL = pick()
		w.User.ID, w.User.Email, w.User.Name, w.User.Status = uuid.New(), pick(), pick(), pick()
		w.User.EmailVerified = r.IntN(2) == 0
		if w.User.EmailVerified {
			v := tm()
			w.User.EmailVerifiedAt = &v
		}
		w.User.CreatedAt = tm()
		w.Tenant.Slug, w.Tenant.Name = pick(), pick()

		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(&w); err != nil {
			t.Fatal(err)
		}
		if got := appendWhoami(nil, &w); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want.Bytes())
		}
	}
}
