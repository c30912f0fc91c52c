package mail

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestMailsMatchGolden")

// TestMailsMatchGolden renders every mail (subject, text and HTML) with sample data and
// compares it with testdata/mails/NAME.eml.txt (go test ./internal/mail -run
// TestMailsMatchGolden -update rewrites them). A template without a golden file fails.
func TestMailsMatchGolden(t *testing.T) {
	tpls, err := LoadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	d := Data{Tenant: "Acme", Email: "ada@acme.example", Name: "Ada", NewEmail: "ada@new.example",
		Link: "https://acme.example.com/verify?token=TOKEN", Link2: "https://acme.example.com/password/forgot",
		Expires: "24 hours", Device: "Firefox on Linux", IP: "203.0.113.7", When: "30 Nov 2026 09:15 UTC",
		Event: "Two-factor authentication turned on", Detail: "from Firefox on Linux"}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			subj, text, html, err := tpls.Render(name, d)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			got := "Subject: " + subj + "\n\n" + text + "\n---- HTML ----\n" + html + "\n"
			path := filepath.Join("testdata", "mails", name+".eml.txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s differs from %s (-want +got):\n%s", name, path, diff)
			}
		})
	}
	// A greeting without a name stays a greeting.
	_, text, _, err := tpls.Render(TplVerifyEmail, Data{Tenant: "Acme", Email: "ada@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	if got := text[:len("Hello,")]; got != "Hello," {
		t.Errorf("nameless greeting = %q, want %q", got, "Hello,")
	}
}
