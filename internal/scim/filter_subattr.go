package scim

import (
	"strings"
)

// rewriteValuePathSub turns the PATCH-path form some clients also send as a filter,
// `emails[type eq "work"].value eq "x"`, into the filter grammar's value path
// `emails[type eq "work" and value eq "x"]` (RFC 7644 §3.4.2.2 has no `].sub` in
// filters; the parser refuses it): "an element whose type is work and whose value is x".
// A bracket holding "or" is left alone (the parser takes no parentheses there, so the
// rewrite could not keep its meaning); scim2/filter-parser takes at most two terms in a
// value filter, so the bracket should hold one comparison. Other input is returned unchanged; what does not
// parse afterwards is invalidFilter as before.
func rewriteValuePathSub(s string) string {
	for range 16 { // each pass rewrites the first occurrence
		out, ok := rewriteFirst(s)
		if !ok {
			return s
		}
		s = out
	}
	return s
}

// rewriteFirst rewrites the first `[…].sub op value` outside string literals.
func rewriteFirst(s string) (string, bool) {
	open, depth, inStr := -1, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '[':
			if depth == 0 {
				open = i
			}
			depth++
		case c == ']' && depth > 0:
			depth--
			if depth != 0 || i+1 >= len(s) || s[i+1] != '.' {
				continue
			}
			if out, ok := rewriteAt(s, open, i); ok {
				return out, true
			}
		}
	}
	return s, false
}

// rewriteAt rewrites s whose value path's brackets are at open and closing, followed by
// ".sub op [value]".
func rewriteAt(s string, open, closing int) (string, bool) {
	j := closing + 2
	sub := j
	for j < len(s) && isAttrChar(s[j]) {
		j++
	}
	if j == sub || j >= len(s) || s[j] != ' ' {
		return s, false
	}
	subName := s[sub:j]
	for j < len(s) && s[j] == ' ' {
		j++
	}
	op := j
	for j < len(s) && isAttrChar(s[j]) {
		j++
	}
	opName := strings.ToLower(s[op:j])
	if opName == "" {
		return s, false
	}
	end := j
	if opName != "pr" {
		for j < len(s) && s[j] == ' ' {
			j++
		}
		if j >= len(s) {
			return s, false
		}
		if s[j] == '"' {
			k := j + 1
			for ; k < len(s) && s[k] != '"'; k++ {
				if s[k] == '\\' {
					k++
				}
			}
			if k >= len(s) {
				return s, false
			}
			end = k + 1
		} else {
			k := j
			for k < len(s) && s[k] != ' ' && s[k] != ')' {
				k++
			}
			if k == j {
				return s, false
			}
			end = k
		}
	}
	inner := s[open+1 : closing]
	if hasOr(inner) {
		return s, false // the parser takes no parentheses in a value filter: "a or b and c" would bind wrongly
	}
	return s[:open+1] + inner + " and " + subName + " " + s[op:end] + "]" + s[end:], true
}

// hasOr reports an "or" operator outside string literals.
func hasOr(s string) bool {
	inStr := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && (c == 'o' || c == 'O') && i > 0 && s[i-1] == ' ' && i+2 < len(s) && (s[i+1] == 'r' || s[i+1] == 'R') && s[i+2] == ' ':
			return true
		}
	}
	return false
}

func isAttrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '$'
}
