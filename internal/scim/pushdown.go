package scim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	filter "github.com/scim2/filter-parser/v2"
)

// Filters answered by index. A filter whose every match must satisfy one of a few equality
// look-ups — userName eq, externalId eq, emails.value eq, a value path on emails that
// requires value eq, and and/or of those — reads only the users those look-ups find
// (FindSCIMUsersByKeys); any other filter reads every user of the tenant. In both cases
// Filter.Match decides on the rendered resources, so the look-ups only have to find a
// superset of the matches: lookups are built so that every user Filter.Match accepts is
// among the candidates (TestPushdownMatchesGoEvaluation compares both on a mixed data set).

// maxLookupKeys bounds the keys of one plan (a longer or-chain reads every user).
const maxLookupKeys = 100

// maxKeyRunes is the longest key stored in directory_user_emails (its CHECK); a filter
// value longer than that cannot use the index.
const maxKeyRunes = 1024

// numberKey is the key of an address value that is a JSON number: Filter.Match compares
// its decimal form, which a filter string may spell in several ways, so such users are
// candidates of every filter value that reads as a number.
const numberKey = "#number"

// lookups are index look-ups whose union holds every match of a filter. Names and emails
// are lower-cased (userName and emails.value are caseExact=false, compared after
// strings.ToLower); external ids are exact.
type lookups struct {
	names, externalIDs, emails []string
}

func (l lookups) size() int { return len(l.names) + len(l.externalIDs) + len(l.emails) }

func (l lookups) union(o lookups) lookups {
	return lookups{names: append(slices.Clone(l.names), o.names...), externalIDs: append(slices.Clone(l.externalIDs), o.externalIDs...),
		emails: append(slices.Clone(l.emails), o.emails...)}
}

// planLookups returns the index look-ups of f, or false when f must be evaluated over
// every user (no filter, or a term no index answers where every match would need it).
func planLookups(f *Filter) (lookups, bool) {
	if f == nil {
		return lookups{}, false
	}
	l, ok := planExpr(f.expr, false)
	if !ok || l.size() == 0 || l.size() > maxLookupKeys {
		return lookups{}, false
	}
	return l, true
}

// planExpr plans e over a User resource, or (inEmail) over one element of its emails.
func planExpr(e filter.Expression, inEmail bool) (lookups, bool) {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		l, lok := planExpr(x.Left, inEmail)
		r, rok := planExpr(x.Right, inEmail)
		if x.Operator == filter.AND {
			// Every match satisfies both sides: either side's look-ups hold them all.
			switch {
			case lok && rok && r.size() < l.size():
				return r, true
			case lok:
				return l, true
			case rok:
				return r, true
			}
			return lookups{}, false
		}
		if lok && rok {
			return l.union(r), true
		}
		return lookups{}, false
	case *filter.ValuePath:
		if inEmail || !coreURI(x.AttributePath.URI()) || canon(x.AttributePath.AttributeName) != "emails" {
			return lookups{}, false
		}
		return planExpr(x.ValueFilter, true)
	case *filter.AttributeExpression:
		return planTerm(x, inEmail)
	}
	return lookups{}, false
}

// planTerm plans one comparison: only eq with a string.
func planTerm(x *filter.AttributeExpression, inEmail bool) (lookups, bool) {
	v, isStr := x.CompareValue.(string)
	if x.Operator != filter.EQ || !isStr || !coreURI(x.AttributePath.URI()) || utf8.RuneCountInString(v) > maxKeyRunes {
		return lookups{}, false
	}
	name, sa := canon(x.AttributePath.AttributeName), x.AttributePath.SubAttributeName()
	switch {
	case inEmail && name == "value" && sa == "":
		return lookups{emails: emailFilterKeys(v)}, true
	case inEmail:
		return lookups{}, false
	case name == "userName" && sa == "":
		return lookups{names: []string{strings.ToLower(v)}}, true
	case name == "externalId" && sa == "":
		return lookups{externalIDs: []string{v}}, true
	case name == "emails" && strings.EqualFold(sa, "value"):
		return lookups{emails: emailFilterKeys(v)}, true
	}
	return lookups{}, false
}

// coreURI: the attribute path addresses the resource itself (containerOf).
func coreURI(uri string) bool {
	return uri == "" || strings.EqualFold(uri, UserSchema) || strings.EqualFold(uri, GroupSchema)
}

// emailFilterKeys are the keys an address filter value v looks up: v lower-cased, and
// numberKey when v reads as a number.
func emailFilterKeys(v string) []string {
	keys := []string{strings.ToLower(v)}
	if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
		keys = append(keys, numberKey)
	}
	return keys
}

// emailKeys are the index keys of a directory record's addresses (stored attributes as
// JSON, as renderUser reads them): every value of an element of emails (a list, or one
// object), in any spelling of "value", and the scalars and objects' values of a list held
// there — each as the filter compares it (compare's string forms, lower-cased). It may
// hold more than a filter can match, never less.
func emailKeys(attrs []byte) []string {
	res := Resource{}
	if len(attrs) > 0 {
		_ = json.Unmarshal(attrs, &res)
	}
	var keys []string
	add := func(v any) {
		k, ok := "", true
		switch x := v.(type) {
		case string:
			k = strings.ToLower(x)
		case bool:
			k = fmt.Sprint(x)
		case float64:
			k = numberKey
		default:
			ok = false
		}
		if ok && utf8.RuneCountInString(k) <= maxKeyRunes && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, el := range list(res, "emails") {
		m, isMap := el.(map[string]any)
		if !isMap {
			continue
		}
		for k, v := range m {
			if !strings.EqualFold(k, "value") {
				continue
			}
			add(v)
			items, _ := v.([]any)
			for _, it := range items {
				if im, ok := it.(map[string]any); ok {
					for ik, iv := range im {
						if strings.EqualFold(ik, "value") {
							add(iv)
						}
					}
					continue
				}
				add(it)
			}
		}
	}
	if keys == nil {
		keys = []string{}
	}
	return keys
}
