package domainverify

import (
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

const (
	maxDomainLen = 253
	maxLabelLen  = 63
)

// NormalizeDomain returns d in the canonical form used for verification: trimmed,
// lower-cased, without a trailing dot, and converted to ASCII (IDNA Lookup profile, so
// "bücher.example" becomes "xn--bcher-kva.example"). It returns an error wrapping
// ErrInvalidDomain unless the result is a hostname of at least two labels, each 1–63
// letters, digits or inner hyphens, at most 253 characters in total, with a non-numeric
// top-level label (no wildcards, underscores or IP addresses).
func NormalizeDomain(d string) (string, error) {
	in := d
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if d == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidDomain)
	}
	ascii, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrInvalidDomain, in, err)
	}
	ascii = strings.ToLower(ascii)
	if problem := hostnameProblem(ascii); problem != "" {
		return "", fmt.Errorf("%w %q: %s", ErrInvalidDomain, in, problem)
	}
	return ascii, nil
}

// hostnameProblem checks the LDH syntax of an ASCII, lower-case hostname and describes
// the first problem found, or returns "".
func hostnameProblem(d string) string {
	if len(d) > maxDomainLen {
		return fmt.Sprintf("longer than %d characters", maxDomainLen)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return "needs at least two labels"
	}
	for _, l := range labels {
		if problem := labelProblem(l); problem != "" {
			return fmt.Sprintf("label %q: %s", l, problem)
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "top-level label is numeric"
	}
	return ""
}

func labelProblem(l string) string {
	switch {
	case l == "":
		return "empty"
	case len(l) > maxLabelLen:
		return fmt.Sprintf("longer than %d characters", maxLabelLen)
	case l[0] == '-' || l[len(l)-1] == '-':
		return "starts or ends with a hyphen"
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return fmt.Sprintf("invalid character %q", c)
		}
	}
	return ""
}
