package authz_test

import (
	"time"

	"github.com/pquerna/otp/totp"
)

func totpCode(secret string) (string, error) { return totp.GenerateCode(secret, time.Now()) }
