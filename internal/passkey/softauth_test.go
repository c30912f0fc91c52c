package passkey_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// authenticator is a software WebAuthn authenticator built from the specification
// (WebAuthn Level 3 §6.1 authenticator data, §6.5 attestation "none", §5.8.1
// clientDataJSON): an ECDSA P-256 key per credential, a sign counter, user verification
// and backup flags it sets as told.
type authenticator struct {
	origin  string
	key     *ecdsa.PrivateKey
	credID  []byte
	user    []byte // the user handle it stored at registration
	count   uint32
	uv      bool // sets UV
	be, bs  bool // backup eligible, backup state
	counter bool // keeps a sign counter (else always 0)
}

func newAuthenticator(t *testing.T, origin string) *authenticator {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &authenticator{origin: origin, key: k, credID: id, uv: true, counter: true}
}

var b64 = base64.RawURLEncoding

// options is the part of begin's {publicKey:{…}} the authenticator reads.
type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		UserVerification string `json:"userVerification"`
		AllowCredentials []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
	} `json:"publicKey"`
}

func parseOptions(t *testing.T, body []byte) options {
	t.Helper()
	var o options
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatalf("options: %v: %s", err, body)
	}
	if o.PublicKey.Challenge == "" {
		t.Fatalf("options without a challenge: %s", body)
	}
	return o
}

func (a *authenticator) flags(attested bool) byte {
	f := byte(0x01) // UP
	if a.uv {
		f |= 0x04
	}
	if a.be {
		f |= 0x08
	}
	if a.bs {
		f |= 0x10
	}
	if attested {
		f |= 0x40
	}
	return f
}

func (a *authenticator) authData(rpID string, attested bool) []byte {
	h := sha256.Sum256([]byte(rpID))
	out := append([]byte{}, h[:]...)
	out = append(out, a.flags(attested))
	out = binary.BigEndian.AppendUint32(out, a.count)
	if attested {
		out = append(out, make([]byte, 16)...) // AAGUID: zero (attestation none)
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.credID)))
		out = append(out, a.credID...)
		x, y := a.key.X.FillBytes(make([]byte, 32)), a.key.Y.FillBytes(make([]byte, 32))
		cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y}) // EC2, ES256, P-256
		if err != nil {
			panic(err)
		}
		out = append(out, cose...)
	}
	return out
}

func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// create answers creation options as navigator.credentials.create(...).toJSON() would.
func (a *authenticator) create(t *testing.T, opts []byte) []byte {
	t.Helper()
	o := parseOptions(t, opts)
	user, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatalf("user id: %v", err)
	}
	a.user = user
	cd := clientData("webauthn.create", o.PublicKey.Challenge, a.origin)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(o.PublicKey.RP.ID, true)})
	if err != nil {
		t.Fatal(err)
	}
	return credentialJSON(a.credID, map[string]any{"clientDataJSON": b64.EncodeToString(cd),
		"attestationObject": b64.EncodeToString(att), "transports": []string{"internal"}})
}

// get answers request options as navigator.credentials.get(...).toJSON() would, with the
// counter advanced first (when it keeps one).
func (a *authenticator) get(t *testing.T, opts []byte) []byte {
	t.Helper()
	o := parseOptions(t, opts)
	if a.counter {
		a.count++
	}
	return a.sign(t, o.PublicKey.RPID, o.PublicKey.Challenge, "webauthn.get")
}

func (a *authenticator) sign(t *testing.T, rpID, challenge, typ string) []byte {
	t.Helper()
	cd := clientData(typ, challenge, a.origin)
	ad := a.authData(rpID, false)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return credentialJSON(a.credID, map[string]any{"clientDataJSON": b64.EncodeToString(cd),
		"authenticatorData": b64.EncodeToString(ad), "signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(a.user)})
}

func credentialJSON(id []byte, resp map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(id), "rawId": b64.EncodeToString(id), "type": "public-key",
		"response": resp, "clientExtensionResults": map[string]any{}, "authenticatorAttachment": "platform"})
	return b
}
