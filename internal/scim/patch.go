package scim

import (
	"encoding/json"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// MaxOperations bounds one PATCH request (a group push of thousands of members is a handful
// of operations with long value lists, or one operation per member).
const MaxOperations = 10000

// Operation is one PATCH operation (RFC 7644 §3.5.2). Op is lower-cased on decoding:
// Entra ID sends "Add", "Replace", "Remove".
type Operation struct {
	Op    string
	Path  string
	Value any
}

// DecodePatch reads a PatchOp message. Errors: invalidSyntax, invalidValue.
func DecodePatch(body []byte) ([]Operation, error) {
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, invalidSyntax("The body is not a JSON object.")
	}
	ops := list(raw, "Operations")
	if _, v, ok := lookup(raw, "Operations"); !ok || v == nil {
		return nil, invalidSyntax("A PatchOp message needs Operations.")
	}
	if len(ops) > MaxOperations {
		return nil, invalidValue("At most %d operations per request.", MaxOperations)
	}
	out := make([]Operation, 0, len(ops))
	for _, o := range ops {
		m, ok := o.(map[string]any)
		if !ok {
			return nil, invalidSyntax("Each operation is an object.")
		}
		op := strings.ToLower(strings.TrimSpace(str(m, "op")))
		if op != "add" && op != "replace" && op != "remove" {
			return nil, invalidSyntax("op must be add, replace or remove.")
		}
		_, v, _ := lookup(m, "value")
		out = append(out, Operation{Op: op, Path: strings.TrimSpace(str(m, "path")), Value: v})
	}
	return out, nil
}

// ApplyPatch applies the operations to a copy of the resource and returns it. Errors:
// invalidPath, noTarget, invalidValue, mutability.
func ApplyPatch(r Resource, ops []Operation) (Resource, error) {
	out, _ := deepCopy(r).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	for _, op := range ops {
		if err := applyOp(out, op.Op, op.Path, canonicalize(op.Value)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func applyOp(r map[string]any, op, path string, value any) error {
	if path == "" {
		if op == "remove" {
			return noTarget("A remove operation needs a path.")
		}
		m, ok := value.(map[string]any)
		if !ok {
			return invalidValue("An operation without a path needs an object value.")
		}
		for k, v := range m {
			switch {
			case strings.EqualFold(k, EnterpriseSchema):
				ext, ok := v.(map[string]any)
				if !ok {
					return invalidValue("The enterprise extension is an object.")
				}
				for ek, ev := range ext {
					if err := applyOp(r, op, EnterpriseSchema+":"+ek, ev); err != nil {
						return err
					}
				}
			case strings.ContainsAny(k, ".:"):
				// Entra ID: {"op":"Replace","value":{"name.givenName":"Ann","urn:…:User:department":"X"}}
				if err := applyOp(r, op, k, v); err != nil {
					return err
				}
			default:
				if err := applyAttr(r, op, k, v); err != nil {
					return err
				}
			}
		}
		return nil
	}
	p, err := parsePathSafe(path)
	if err != nil {
		return invalidPath("The path %q is not valid.", truncate(path, 100))
	}
	container := r
	if uri := p.AttributePath.URI(); uri != "" && !strings.EqualFold(uri, UserSchema) && !strings.EqualFold(uri, GroupSchema) {
		if !strings.EqualFold(uri, EnterpriseSchema) {
			return invalidPath("Unknown schema %q.", truncate(uri, 100))
		}
		container = sub(r, EnterpriseSchema)
		if container == nil {
			if op == "remove" {
				return nil
			}
			container = map[string]any{}
			r[EnterpriseSchema] = container
		}
	}
	attr := canon(p.AttributePath.AttributeName)
	if p.ValueExpression == nil {
		if sa := p.AttributePath.SubAttributeName(); sa != "" {
			target := sub(container, attr)
			if target == nil {
				if op == "remove" {
					return nil
				}
				target = map[string]any{}
				set(container, attr, target)
			}
			return applyAttr(target, op, sa, value)
		}
		return applyAttr(container, op, attr, value)
	}
	if immutable(attr) {
		return mutability("%s cannot be changed.", attr)
	}
	arr := list(container, attr)
	subName := p.SubAttributeName()
	var matched []int
	for i, el := range arr {
		if m, ok := el.(map[string]any); ok && evalExpr(p.ValueExpression, m) {
			matched = append(matched, i)
		}
	}
	switch op {
	case "remove":
		if subName != "" {
			for _, i := range matched {
				del(arr[i].(map[string]any), subName)
			}
			set(container, attr, arr)
			return nil
		}
		keep := arr[:0:0]
		mi := 0
		for i, el := range arr {
			if mi < len(matched) && matched[mi] == i {
				mi++
				continue
			}
			keep = append(keep, el)
		}
		if len(keep) == 0 {
			del(container, attr)
		} else {
			set(container, attr, keep)
		}
		return nil
	}
	if len(matched) == 0 {
		// emails[type eq "work"].value on a user without a work address: Entra ID and Okta
		// expect the element to be created with the filter's value.
		eq, ok := p.ValueExpression.(*filter.AttributeExpression)
		if !ok || eq.Operator != filter.EQ || eq.AttributePath.SubAttribute != nil {
			return noTarget("No value of %s matches the filter.", attr)
		}
		el := map[string]any{canon(eq.AttributePath.AttributeName): eq.CompareValue}
		arr = append(arr, el)
		matched = []int{len(arr) - 1}
	}
	for _, i := range matched {
		el, _ := arr[i].(map[string]any)
		if subName != "" {
			set(el, subName, value)
			continue
		}
		vm, ok := value.(map[string]any)
		if !ok {
			return invalidValue("A filtered %s takes an object value.", attr)
		}
		for k, v := range vm {
			set(el, k, v)
		}
	}
	set(container, attr, arr)
	return nil
}

func parsePathSafe(s string) (p filter.Path, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = invalidPath("unparseable path")
		}
	}()
	return filter.ParsePath([]byte(s))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func immutable(attr string) bool { return attr == "id" || attr == "meta" }

// applyAttr applies op to one attribute of m.
func applyAttr(m map[string]any, op, name string, value any) error {
	name = canon(name)
	if immutable(name) {
		// Okta repeats the group's id in a replace without path: the same value is no change.
		if _, cur, ok := lookup(m, name); ok && op == "replace" && cur == value {
			return nil
		}
		return mutability("%s cannot be changed.", name)
	}
	if name == "schemas" {
		return nil
	}
	if name == "active" || name == "primary" {
		value = boolish(value)
	}
	if name == "manager" {
		if s, ok := value.(string); ok { // Entra ID sends the manager's id as a bare string
			value = map[string]any{"value": s}
		}
	}
	_, cur, exists := lookup(m, name)
	switch op {
	case "remove":
		if value != nil && multiValued[name] {
			drop := valueSet(asList(value))
			keep := []any{}
			for _, el := range list(m, name) {
				if !drop[elementValue(el)] {
					keep = append(keep, el)
				}
			}
			if len(keep) == 0 {
				del(m, name)
			} else {
				set(m, name, keep)
			}
			return nil
		}
		del(m, name)
		return nil
	case "add":
		if multiValued[name] {
			have := list(m, name)
			seen := valueSet(have)
			for _, el := range asList(value) {
				if k := elementValue(el); k != "" && seen[k] {
					continue
				}
				seen[elementValue(el)] = true
				have = append(have, el)
			}
			set(m, name, have)
			return nil
		}
		fallthrough
	case "replace":
		if multiValued[name] {
			if value == nil {
				del(m, name)
				return nil
			}
			set(m, name, asList(value))
			return nil
		}
		if cm, ok := cur.(map[string]any); ok && exists {
			if vm, ok := value.(map[string]any); ok {
				for k, v := range vm {
					set(cm, k, v)
				}
				return nil
			}
		}
		if value == nil {
			del(m, name)
			return nil
		}
		set(m, name, value)
	}
	return nil
}

func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	}
	return []any{v}
}

// elementValue is the identity of a multi-valued element: its "value" (lower-cased) or, for
// a plain value, the value itself.
func elementValue(el any) string {
	switch x := el.(type) {
	case map[string]any:
		s, _ := lookupValue(x).(string)
		return strings.ToLower(s)
	case string:
		return strings.ToLower(x)
	}
	return ""
}

func lookupValue(m map[string]any) any {
	_, v, _ := lookup(m, "value")
	return v
}

func valueSet(l []any) map[string]bool {
	out := make(map[string]bool, len(l))
	for _, el := range l {
		if k := elementValue(el); k != "" {
			out[k] = true
		}
	}
	return out
}
