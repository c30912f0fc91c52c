package sso_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/sso"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

// aggregates name the IdP to take from multi-entity documents.
var aggregates = map[string]string{
	"shibboleth-1.xml":             "https://idp.fccn.pt/idp/shibboleth",
	"federation-swamid-test-1.xml": "https://idp.umu.se/saml2/idp/metadata.php",
}

// TestMetadataSamples parses every real IdP metadata sample (testdata/idp-metadata, see
// its SOURCES.md) and compares what Gatehouse takes from it with a golden file.
func TestMetadataSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/idp-metadata/*.xml")
	if err != nil || len(files) < 14 {
		t.Fatalf("samples: %v %d", err, len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			idp, err := sso.ParseMetadata(data, aggregates[name])
			var got any = idp
			if err != nil {
				e := apperr.From(err)
				got = map[string]any{"error": e.Code, "details": e.Details}
			}
			out, _ := json.MarshalIndent(got, "", "  ")
			out = append(out, '\n')
			golden := filepath.Join("testdata/golden", strings.TrimSuffix(name, ".xml")+".json")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/sso -run TestMetadataSamples -update)", err)
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("%s differs from %s:\n%s", name, golden, out)
			}
		})
	}
}

// TestMetadataRefused: what must never be trusted.
func TestMetadataRefused(t *testing.T) {
	okta, err := os.ReadFile("testdata/idp-metadata/okta-1.xml")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":     nil,
		"not xml":   []byte("hello"),
		"doctype":   append([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>`), okta[bytes.Index(okta, []byte("<md:EntityDescriptor")):]...),
		"sp only":   []byte(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></EntityDescriptor>`),
		"oversized": bytes.Repeat([]byte(" "), sso.MaxMetadataBytes+1),
	}
	for name, doc := range cases {
		if _, err := sso.ParseMetadata(doc, ""); err == nil || !apperr.Is(err, "invalid_metadata") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzParseMetadata: no input makes the parser panic or accept something without a key.
func FuzzParseMetadata(f *testing.F) {
	files, _ := filepath.Glob("testdata/idp-metadata/*.xml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) < 20000 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		idp, err := sso.ParseMetadata(data, "")
		if err == nil && (len(idp.Certificates) == 0 || idp.EntityID == "" || (idp.SSORedirect == "" && idp.SSOPost == "")) {
			t.Fatalf("accepted metadata without key or endpoint: %+v", idp)
		}
	})
}
