// Package objstore builds the one S3 client a process uses, from configuration: AWS S3 through
// the standard credential chain, or an S3-compatible endpoint (MinIO, the in-process dev store).
package objstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/creatorvault/orchestrator/internal/config"
)

// DevAccessKey and DevSecretKey are the static credentials of the in-process dev store, which
// accepts any; they are not secrets.
const (
	DevAccessKey = "orchestrator-dev"
	DevSecretKey = "orchestrator-dev-secret"
)

// Options add to the configuration what only dev and tests set.
type Options struct {
	// StaticCredentials replaces the AWS credential chain (dev and tests only).
	StaticCredentials *aws.Credentials
}

// NewClient builds an S3 client for cfg.
func NewClient(ctx context.Context, cfg config.S3, opts Options) (*s3.Client, error) {
	loaders := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.Region)}
	if c := opts.StaticCredentials; c != nil {
		loaders = append(loaders, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, loaders...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	}), nil
}

// DevCredentials are the static credentials for the in-process store.
func DevCredentials() *aws.Credentials {
	return &aws.Credentials{AccessKeyID: DevAccessKey, SecretAccessKey: DevSecretKey}
}

// EnsureBucket creates bucket unless it exists.
func EnsureBucket(ctx context.Context, c *s3.Client, bucket string) error {
	_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		return nil
	}
	var notFound *types.NotFound
	var apiErr smithy.APIError
	if !errors.As(err, &notFound) && !(errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotFound") {
		return fmt.Errorf("S3 bucket %s: %w", bucket, err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if errors.As(err, &owned) {
			return nil
		}
		return fmt.Errorf("create S3 bucket %s: %w", bucket, err)
	}
	return nil
}
