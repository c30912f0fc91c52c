package scim

import (
	"fmt"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// MaxFilterLength bounds a filter before it is parsed.
const MaxFilterLength = 4096

// Filter is a parsed SCIM filter (RFC 7644 §3.4.2.2), parsed by scim2/filter-parser.
type Filter struct{ expr filter.Expression }

// ParseFilter parses a filter; "" is no filter. Errors: invalidFilter.
func ParseFilter(s string) (*Filter, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxFilterLength {
		return nil, invalidFilter("The filter is longer than %d characters.", MaxFilterLength)
	}
	e, err := parseFilterSafe(rewriteValuePathSub(s))
	if err != nil {
		return nil, invalidFilter("The filter is not valid: %s", shortErr(err))
	}
	if err := checkExpr(e); err != nil {
		return nil, err
	}
	return &Filter{expr: e}, nil
}

// parseFilterSafe parses, turning a panic of the parser on odd input into an error.
func parseFilterSafe(s string) (e filter.Expression, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("unparseable filter")
		}
	}()
	return filter.ParseFilter([]byte(s))
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// checkExpr refuses comparisons the grammar allows but SCIM does not (ordering of booleans).
func checkExpr(e filter.Expression) error {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		if err := checkExpr(x.Left); err != nil {
			return err
		}
		return checkExpr(x.Right)
	case *filter.NotExpression:
		return checkExpr(x.Expression)
	case *filter.ValuePath:
		return checkExpr(x.ValueFilter)
	case *filter.AttributeExpression:
		switch x.Operator {
		case filter.GT, filter.GE, filter.LT, filter.LE, filter.CO, filter.SW, filter.EW:
			switch x.CompareValue.(type) {
			case bool, nil:
				return invalidFilter("%s cannot compare %v.", x.Operator, x.CompareValue)
			}
		}
	}
	return nil
}

// Match reports whether the resource satisfies the filter (nil matches everything).
func (f *Filter) Match(r Resource) bool {
	if f == nil {
		return true
	}
	return evalExpr(f.expr, r)
}

// EqualsAttr reports the attribute and value of a filter that is one "attr eq value"
// comparison (the look-up IdPs make before they create), for a fast path.
func (f *Filter) EqualsAttr() (attr string, value string, ok bool) {
	if f == nil {
		return "", "", false
	}
	a, isAttr := f.expr.(*filter.AttributeExpression)
	if !isAttr || a.Operator != filter.EQ || a.AttributePath.SubAttribute != nil {
		return "", "", false
	}
	s, isStr := a.CompareValue.(string)
	if !isStr {
		return "", "", false
	}
	if u := a.AttributePath.URI(); u != "" && !strings.EqualFold(u, UserSchema) && !strings.EqualFold(u, GroupSchema) {
		return "", "", false
	}
	return canon(a.AttributePath.AttributeName), s, true
}

func evalExpr(e filter.Expression, r map[string]any) bool {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		if x.Operator == filter.AND {
			return evalExpr(x.Left, r) && evalExpr(x.Right, r)
		}
		return evalExpr(x.Left, r) || evalExpr(x.Right, r)
	case *filter.NotExpression:
		return !evalExpr(x.Expression, r)
	case *filter.ValuePath:
		container := containerOf(r, x.AttributePath.URI())
		if container == nil {
			return false
		}
		for _, el := range list(container, x.AttributePath.AttributeName) {
			m, ok := el.(map[string]any)
			if ok && evalExpr(x.ValueFilter, m) {
				if sa := x.AttributePath.SubAttributeName(); sa != "" {
					_, v, present := lookup(m, sa)
					if !present || v == nil {
						continue
					}
				}
				return true
			}
		}
		return false
	case *filter.AttributeExpression:
		return evalAttr(x, r)
	}
	return false
}

// containerOf is the part of r an attribute path with this URI prefix addresses: the
// resource for the core schemas, the extension's object for an extension.
func containerOf(r map[string]any, uri string) map[string]any {
	if uri == "" || strings.EqualFold(uri, UserSchema) || strings.EqualFold(uri, GroupSchema) {
		return r
	}
	return sub(r, uri)
}

// values are the leaf values an attribute path names in r (several for a multi-valued one).
func values(r map[string]any, p filter.AttributePath) (vals []any, leaf string) {
	container := containerOf(r, p.URI())
	if container == nil {
		return nil, p.AttributeName
	}
	// "urn:…:enterprise:2.0:User:manager.value" may also come with the extension spelled as
	// the attribute name when the parser splits differently; lookup covers both.
	_, v, ok := lookup(container, p.AttributeName)
	if !ok {
		return nil, p.AttributeName
	}
	leaf = canon(p.AttributeName)
	pick := func(v any) {
		if v != nil {
			vals = append(vals, v)
		}
	}
	sa := p.SubAttributeName()
	switch x := v.(type) {
	case []any:
		for _, el := range x {
			m, isMap := el.(map[string]any)
			switch {
			case sa != "" && isMap:
				_, sv, _ := lookup(m, sa)
				pick(sv)
			case sa == "" && isMap:
				_, sv, _ := lookup(m, "value")
				pick(sv)
			case sa == "":
				pick(el)
			}
		}
	case map[string]any:
		if sa == "" {
			pick(x)
		} else {
			_, sv, _ := lookup(x, sa)
			pick(sv)
		}
	default:
		if sa == "" {
			pick(x)
		}
	}
	if sa != "" {
		leaf = canon(sa)
	}
	return vals, leaf
}

func evalAttr(x *filter.AttributeExpression, r map[string]any) bool {
	vals, leaf := values(r, x.AttributePath)
	switch x.Operator {
	case filter.PR:
		for _, v := range vals {
			if present(v) {
				return true
			}
		}
		return false
	case filter.NE:
		if x.CompareValue == nil {
			return len(vals) > 0
		}
		for _, v := range vals {
			if compare(filter.EQ, v, x.CompareValue, caseExact[leaf]) {
				return false
			}
		}
		return true
	}
	if x.CompareValue == nil && x.Operator == filter.EQ {
		return len(vals) == 0
	}
	for _, v := range vals {
		if compare(x.Operator, v, x.CompareValue, caseExact[leaf]) {
			return true
		}
	}
	return false
}

func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	}
	return 0, false
}

// compare applies op to an attribute value and a filter value.
func compare(op filter.CompareOperator, have, want any, exact bool) bool {
	if wb, ok := want.(bool); ok {
		hb, ok := boolish(have).(bool)
		return ok && op == filter.EQ && hb == wb
	}
	if wn, ok := number(want); ok {
		hn, ok := number(have)
		if !ok {
			if s, isStr := have.(string); isStr {
				return compareStrings(op, s, fmt.Sprint(want), exact)
			}
			return false
		}
		switch op {
		case filter.EQ:
			return hn == wn
		case filter.GT:
			return hn > wn
		case filter.GE:
			return hn >= wn
		case filter.LT:
			return hn < wn
		case filter.LE:
			return hn <= wn
		}
		return false
	}
	ws, ok := want.(string)
	if !ok {
		return false
	}
	var hs string
	switch h := have.(type) {
	case string:
		hs = h
	case bool:
		hs = fmt.Sprint(h)
	case float64:
		hs = fmt.Sprint(h)
	default:
		return false
	}
	return compareStrings(op, hs, ws, exact)
}

func compareStrings(op filter.CompareOperator, have, want string, exact bool) bool {
	if !exact {
		have, want = strings.ToLower(have), strings.ToLower(want)
	}
	switch op {
	case filter.EQ:
		return have == want
	case filter.CO:
		return strings.Contains(have, want)
	case filter.SW:
		return strings.HasPrefix(have, want)
	case filter.EW:
		return strings.HasSuffix(have, want)
	case filter.GT:
		return have > want
	case filter.GE:
		return have >= want
	case filter.LT:
		return have < want
	case filter.LE:
		return have <= want
	}
	return false
}
