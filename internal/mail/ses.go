package mail

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
)

// SESSender sends through Amazon SES v2 (SendEmail, simple content). It is configured by
// the AWS SDK's standard chain: AWS_REGION, credentials (environment, shared files, IAM
// role), and AWS_ENDPOINT_URL_SESV2 for another endpoint. The SDK itself retries
// throttling and 5xx answers (3 attempts with backoff); the outbox job retries on top.
type SESSender struct{ client *sesv2.Client }

// NewSESSender loads the AWS configuration.
func NewSESSender(ctx context.Context, opts ...func(*config.LoadOptions) error) (*SESSender, error) {
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("GATEHOUSE_MAIL=ses: AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("GATEHOUSE_MAIL=ses: AWS_REGION is not set")
	}
	return &SESSender{client: sesv2.NewFromConfig(cfg)}, nil
}

// Send calls SendEmail.
func (s *SESSender) Send(ctx context.Context, m Message) (string, error) {
	in := &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(m.From),
		Destination:      &types.Destination{ToAddresses: []string{m.To}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String(m.Subject), Charset: aws.String("UTF-8")},
			Body: &types.Body{
				Text: &types.Content{Data: aws.String(m.Text), Charset: aws.String("UTF-8")},
				Html: &types.Content{Data: aws.String(m.HTML), Charset: aws.String("UTF-8")},
			},
		}},
	}
	if m.ConfigurationSet != "" {
		in.ConfigurationSetName = aws.String(m.ConfigurationSet)
	}
	out, err := s.client.SendEmail(ctx, in)
	if err != nil {
		return "", classifySES(err)
	}
	return aws.ToString(out.MessageId), nil
}

// classifySES separates rejections that retrying cannot fix from passing failures.
func classifySES(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException",
			"NotFoundException", "AccountSuspendedException":
			return &PermanentError{Err: fmt.Errorf("ses: %w", err)}
		}
	}
	return fmt.Errorf("ses: %w", err)
}
