package kit

// Where signing out lands: the signed-out page, and what it says about the organisation's
// sign-in for a session that came from SSO (the idp query value).
const (
	SignedOut            = "/signed-out"                 // no SSO
	SignedOutIdPEnded    = "/signed-out?idp=ended"       // the IdP confirmed single logout
	SignedOutIdPStill    = "/signed-out?idp=still"       // the IdP has no single logout
	SignedOutUnconfirmed = "/signed-out?idp=unconfirmed" // we asked the IdP; it did not confirm
)
