package workflows

import "go.temporal.io/sdk/temporal"

func errNonRetryable(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, "insufficient_funds", nil)
}
