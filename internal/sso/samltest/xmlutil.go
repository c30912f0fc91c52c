package samltest

import (
	"errors"
	"fmt"

	"github.com/beevik/etree"
)

// isElem reports whether el is the element {ns}local.
func isElem(el *etree.Element, ns, local string) bool {
	return el.Tag == local && el.NamespaceURI() == ns
}

// children returns el's child elements named {ns}local.
func children(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if isElem(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// firstChild returns el's first child element named {ns}local, or nil.
func firstChild(el *etree.Element, ns, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if isElem(c, ns, local) {
			return c
		}
	}
	return nil
}

// descendants returns every element named {ns}local below el, in document
// order.
func descendants(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if isElem(c, ns, local) {
			out = append(out, c)
		}
		out = append(out, descendants(c, ns, local)...)
	}
	return out
}

// removeChildren removes el's child elements named {ns}local.
func removeChildren(el *etree.Element, ns, local string) {
	for _, c := range children(el, ns, local) {
		el.RemoveChild(c)
	}
}

// setText replaces all of el's content (text, comments, elements) by text.
func setText(el *etree.Element, text string) {
	el.Child = nil
	el.SetText(text)
}

// newSibling returns a new element named local with the same namespace
// prefix as like, so that it resolves to like's namespace where like is.
func newSibling(like *etree.Element, local string) *etree.Element {
	if like.Space == "" {
		return etree.NewElement(local)
	}
	return etree.NewElement(like.Space + ":" + local)
}

// selfContained returns a copy of el that declares every namespace prefix
// in scope at el, so that it means the same once taken out of its document.
func selfContained(el *etree.Element) *etree.Element {
	cp := el.Copy()
	declared := map[string]bool{}
	for _, a := range cp.Attr {
		if a.Space == "xmlns" {
			declared[a.Key] = true
		} else if a.Space == "" && a.Key == "xmlns" {
			declared[""] = true
		}
	}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			switch {
			case a.Space == "xmlns" && !declared[a.Key]:
				declared[a.Key] = true
				cp.CreateAttr("xmlns:"+a.Key, a.Value)
			case a.Space == "" && a.Key == "xmlns" && !declared[""]:
				declared[""] = true
				cp.CreateAttr("xmlns", a.Value)
			}
		}
	}
	return cp
}

// parseResponse parses a serialized samlp:Response.
func parseResponse(b []byte) (*etree.Document, *etree.Element, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, nil, fmt.Errorf("samltest: parse response: %w", err)
	}
	root := doc.Root()
	if root == nil || !isElem(root, NSProtocol, "Response") {
		return nil, nil, errors.New("samltest: document is not a samlp:Response")
	}
	return doc, root, nil
}

// mustParseResponse is parseResponse for the helpers that return no error:
// their input is a document this package produced, so a failure is a bug
// in the test.
func mustParseResponse(b []byte) (*etree.Document, *etree.Element) {
	doc, root, err := parseResponse(b)
	if err != nil {
		panic(err)
	}
	return doc, root
}

func mustWrite(doc *etree.Document) []byte {
	b, err := doc.WriteToBytes()
	if err != nil {
		panic(fmt.Sprintf("samltest: serialize: %v", err))
	}
	return b
}
