package scim

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"testing"
)

func res(t *testing.T, js string) Resource {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	return canonicalize(m).(map[string]any)
}

const bjensen = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
 "id":"2819c223","userName":"bjensen@example.com","externalId":"BJ-1","displayName":"Babs Jensen","title":"Tour Guide","userType":"Employee",
 "name":{"familyName":"Jensen","givenName":"Barbara"},"active":true,"x":12,
 "emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
 "meta":{"lastModified":"2011-05-13T04:42:34Z","version":"W/\"3694e05e9dff590\""},
 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"701984","department":"Tour Operations","manager":{"value":"26118915"}}}`

// TestFilterGrammar covers every operator, and/or/not, precedence, value paths, extension
// attributes, case rules and errors (RFC 7644 §3.4.2.2).
func TestFilterGrammar(t *testing.T) {
	r := res(t, bjensen)
	cases := []struct {
		filter string
		want   bool
	}{
		{`userName eq "BJENSEN@example.com"`, true},
		{`userName ne "bjensen@example.com"`, false},
		{`userName ne "other"`, true},
		{`name.familyName co "ens"`, true},
		{`userName sw "bj"`, true},
		{`userName ew "example.COM"`, true},
		{`title pr`, true},
		{`nickName pr`, false},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, false},
		{`meta.lastModified ge "2011-05-13T04:42:34Z"`, true},
		{`meta.lastModified lt "2012-01-01T00:00:00Z"`, true},
		{`meta.lastModified le "2011-01-01T00:00:00Z"`, false},
		{`x gt 11`, true},
		{`x le 11`, false},
		{`active eq true`, true},
		{`active eq false`, false},
		{`externalId eq "bj-1"`, false}, // caseExact
		{`externalId eq "BJ-1"`, true},
		{`title pr and userType eq "Employee"`, true},
		{`title pr or userType eq "Intern"`, true},
		{`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`, true},
		{`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`, false},
		{`not (userType eq "Intern")`, true},
		{`emails[type eq "work" and value co "@example.com"]`, true},
		{`emails[type eq "home" and value co "@example.com"]`, false},
		{`emails[type eq "work"] and name.givenName sw "bar"`, true},
		{`emails.type eq "home"`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen@example.com"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915"`, true},
		// The PATCH-path form some clients send as a filter (rewriteValuePathSub).
		{`emails[type eq "work"].value eq "BJENSEN@example.com"`, true},
		{`emails[type eq "home"].value eq "bjensen@example.com"`, false},
		{`emails[type eq "home"].value ew "jensen.org"`, true},
		{`emails[type eq "work"].value eq "bjensen@example.com" and userName sw "bj"`, true},
		{`emails[type eq "work"].value eq "x" or emails[type eq "home"].value eq "BABS@jensen.org"`, true},
		{`userName sw "x" or emails[type eq "home"].value pr`, true},
		{`emails[type eq "other"].value pr`, false},
		{`displayName eq "a[b].c eq d"`, false}, // inside a string: untouched
	}
	for _, c := range cases {
		f, err := ParseFilter(c.filter)
		if err != nil {
			t.Fatalf("%s: %v", c.filter, err)
		}
		if got := f.Match(r); got != c.want {
			t.Errorf("%s: %v, want %v", c.filter, got, c.want)
		}
	}
	for _, bad := range []string{`userName eq`, `userName zz "x"`, `(userName eq "x"`, `emails[type eq "work"`, `active gt true`, `"x" eq userName`,
		// An "or" in the brackets is not rewritten; nor does the parser take three terms there.
		`emails[type eq "work" or type eq "home"].value eq "x"`, `emails[type eq "work"].value eq`,
		`emails[type eq "work" and primary eq true].value eq "x"`} {
		_, err := ParseFilter(bad)
		var se *Error
		if !errors.As(err, &se) || se.SCIMType != "invalidFilter" || se.Status != 400 {
			t.Errorf("%s: %v, want invalidFilter", bad, err)
		}
	}
}

// TestPatchSemantics follows RFC 7644 §3.5.2's examples, and the spellings of Entra ID and Okta.
func TestPatchSemantics(t *testing.T) {
	group := `{"id":"g1","displayName":"Tour Guides","members":[{"value":"2819c223","display":"Babs"},{"value":"902c246b","display":"Mandy"}]}`
	cases := []struct {
		name, base, ops string
		check           func(t *testing.T, r Resource)
		scimType        string
	}{
		{"add members (3.5.2.1)", group, `[{"op":"add","path":"members","value":[{"display":"Jim","value":"aabbcc"}]}]`,
			func(t *testing.T, r Resource) { wantLen(t, r, "members", 3) }, ""},
		{"add a member already there is no duplicate", group, `[{"op":"add","path":"members","value":[{"value":"2819C223"}]}]`,
			func(t *testing.T, r Resource) { wantLen(t, r, "members", 2) }, ""},
		{"add without path (3.5.2.1)", bjensen, `[{"op":"add","value":{"emails":[{"value":"babs@jensen.org","type":"home"},{"value":"b2@x.org","type":"other"}],"nickName":"Babs"}}]`,
			func(t *testing.T, r Resource) {
				wantLen(t, r, "emails", 3)
				if r["nickName"] != "Babs" {
					t.Fatal(r["nickName"])
				}
			}, ""},
		{"remove one member by filter (3.5.2.2)", group, `[{"op":"remove","path":"members[value eq \"2819c223\"]"}]`,
			func(t *testing.T, r Resource) { wantLen(t, r, "members", 1) }, ""},
		{"remove all members (3.5.2.2)", group, `[{"op":"remove","path":"members"}]`,
			func(t *testing.T, r Resource) {
				if _, ok := r["members"]; ok {
					t.Fatal("members left")
				}
			}, ""},
		{"remove members by value (Entra ID)", group, `[{"op":"Remove","path":"members","value":[{"$ref":null,"value":"902c246b"}]}]`,
			func(t *testing.T, r Resource) { wantLen(t, r, "members", 1) }, ""},
		{"remove a sub-attribute of matched values", bjensen, `[{"op":"remove","path":"emails[type eq \"home\"].primary"}]`,
			func(t *testing.T, r Resource) { wantLen(t, r, "emails", 2) }, ""},
		{"replace all members (3.5.2.3)", group, `[{"op":"replace","path":"members","value":[{"value":"x1"}]}]`,
			func(t *testing.T, r Resource) { wantLen(t, r, "members", 1) }, ""},
		{"replace a sub-attribute through a filter (3.5.2.3)", bjensen, `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"new@example.com"}]`,
			func(t *testing.T, r Resource) {
				if primaryEmail(r) != "new@example.com" {
					t.Fatal(r["emails"])
				}
			}, ""},
		{"replace a complex attribute merges (3.5.2.3)", bjensen, `[{"op":"replace","path":"name","value":{"givenName":"Babs"}}]`,
			func(t *testing.T, r Resource) {
				if n := r["name"].(map[string]any); n["givenName"] != "Babs" || n["familyName"] != "Jensen" {
					t.Fatal(n)
				}
			}, ""},
		{"capitalised op, string boolean (Entra ID)", bjensen, `[{"op":"Replace","path":"active","value":"False"}]`,
			func(t *testing.T, r Resource) {
				if r["active"] != false {
					t.Fatal(r["active"])
				}
			}, ""},
		{"no path, dotted keys and extension URN keys (Entra ID)", bjensen, `[{"op":"Replace","value":{"name.givenName":"B","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Sales","active":"True"}}]`,
			func(t *testing.T, r Resource) {
				if r["name"].(map[string]any)["givenName"] != "B" || r[EnterpriseSchema].(map[string]any)["department"] != "Sales" || r["active"] != true {
					t.Fatal(r)
				}
			}, ""},
		{"manager as a bare id (Entra ID)", bjensen, `[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"m-2"}]`,
			func(t *testing.T, r Resource) {
				if r[EnterpriseSchema].(map[string]any)["manager"].(map[string]any)["value"] != "m-2" {
					t.Fatal(r[EnterpriseSchema])
				}
			}, ""},
		{"filter with no match creates the element (Entra ID add)", bjensen, `[{"op":"Add","path":"emails[type eq \"other\"].value","value":"o@x.org"}]`,
			func(t *testing.T, r Resource) { wantLen(t, r, "emails", 3) }, ""},
		{"okta repeats the id", group, `[{"op":"replace","value":{"id":"g1","displayName":"Renamed"}}]`,
			func(t *testing.T, r Resource) {
				if r["displayName"] != "Renamed" {
					t.Fatal(r)
				}
			}, ""},
		{"remove without path", group, `[{"op":"remove"}]`, nil, "noTarget"},
		{"change the id", group, `[{"op":"replace","path":"id","value":"other"}]`, nil, "mutability"},
		{"bad path", group, `[{"op":"replace","path":"members[value eq","value":1}]`, nil, "invalidPath"},
		{"unknown schema", bjensen, `[{"op":"replace","path":"urn:x:y:attr","value":1}]`, nil, "invalidPath"},
		{"no path, not an object", group, `[{"op":"add","value":"x"}]`, nil, "invalidValue"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ops, err := DecodePatch([]byte(`{"schemas":["` + PatchSchema + `"],"Operations":` + c.ops + `}`))
			if err != nil {
				t.Fatal(err)
			}
			base := res(t, c.base)
			before, _ := json.Marshal(base)
			got, err := ApplyPatch(base, ops)
			if after, _ := json.Marshal(base); string(after) != string(before) {
				t.Fatal("ApplyPatch changed its input")
			}
			if c.scimType != "" {
				var se *Error
				if !errors.As(err, &se) || se.SCIMType != c.scimType {
					t.Fatalf("err %v, want %s", err, c.scimType)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, got)
		})
	}
	for _, bad := range []string{`{`, `{"Operations":null}`, `{"Operations":[{"op":"move","path":"x"}]}`, `{"Operations":[1]}`} {
		var se *Error
		if _, err := DecodePatch([]byte(bad)); !errors.As(err, &se) || se.SCIMType != "invalidSyntax" {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func wantLen(t *testing.T, r Resource, attr string, n int) {
	t.Helper()
	if got := len(list(r, attr)); got != n {
		t.Fatalf("%s: %d values, want %d: %v", attr, got, n, r[attr])
	}
}

// TestPagination checks startIndex/count (1-based, clamped) and attribute projection.
func TestPagination(t *testing.T) {
	var all []Resource
	for i := range 5 {
		all = append(all, Resource{"id": string(rune('a' + i)), "userName": "u", "emails": []any{}, "schemas": []any{UserSchema}})
	}
	cases := []struct {
		q           string
		ids         string
		total, per  int
		startIndex  int
		wantInvalid bool
	}{
		{"", "abcde", 5, 5, 1, false},
		{"startIndex=2&count=2", "bc", 5, 2, 2, false},
		{"startIndex=0&count=2", "ab", 5, 2, 1, false},
		{"startIndex=5&count=10", "e", 5, 1, 5, false},
		{"startIndex=9", "", 5, 0, 9, false},
		{"count=0", "", 5, 0, 1, false},
		{"count=-3", "", 5, 0, 1, false},
		{"count=x", "", 0, 0, 0, true},
	}
	for _, c := range cases {
		v, _ := url.ParseQuery(c.q)
		lq, err := ParseListQuery(v)
		if c.wantInvalid {
			if err == nil {
				t.Errorf("%s: no error", c.q)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		p := page(all, lq)
		ids := ""
		for _, r := range p.Resources {
			ids += r["id"].(string)
		}
		if ids != c.ids || p.TotalResults != c.total || p.ItemsPerPage != c.per || p.StartIndex != c.startIndex {
			t.Errorf("%s: %q total %d per %d start %d", c.q, ids, p.TotalResults, p.ItemsPerPage, p.StartIndex)
		}
	}
	r := res(t, bjensen)
	got := Project(r, []string{"userName", "name.givenName", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}, nil)
	want := map[string]any{"id": "2819c223", "userName": "bjensen@example.com", "name": map[string]any{"givenName": "Barbara"},
		EnterpriseSchema: map[string]any{"department": "Tour Operations"}}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("projection %s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["emails"]; ok {
		t.Error("emails projected")
	}
	if ex := Project(r, nil, []string{"emails", "id"}); ex["emails"] != nil || ex["id"] == nil {
		t.Errorf("excluded: %v", ex)
	}
}

// TestETags checks If-Match matching: weak and strong spellings, lists, "*".
func TestETags(t *testing.T) {
	cases := []struct {
		ifMatch, version string
		want             bool
	}{
		{"", `W/"3-1"`, true},
		{"*", `W/"3-1"`, true},
		{`W/"3-1"`, `W/"3-1"`, true},
		{`"3-1"`, `W/"3-1"`, true},
		{`W/"2-1"`, `W/"3-1"`, false},
		{`W/"2-1", W/"3-1"`, `W/"3-1"`, true},
		{`W/"3-10"`, `W/"3-1"`, false},
	}
	for _, c := range cases {
		if got := matches(c.ifMatch, c.version); got != c.want {
			t.Errorf("If-Match %s vs %s: %v", c.ifMatch, c.version, got)
		}
	}
}
