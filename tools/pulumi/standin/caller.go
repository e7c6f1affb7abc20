package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// stsEndpointConfigured: the environment names an endpoint STS calls go to
// (AWS_ENDPOINT_URL_STS, or AWS_ENDPOINT_URL for every service) and does not say to ignore it.
// Only then does the stand-in ask STS: it never reaches for the real one.
func stsEndpointConfigured() bool {
	if strings.EqualFold(os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		return false
	}
	return os.Getenv("AWS_ENDPOINT_URL_STS") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
}

// resolveCallerAccount is the account the provider's credentials belong to. The real provider
// asks STS GetCallerIdentity with them when it is configured (terraform-provider-aws
// internal/conns, through aws-sdk-go-base's GetAwsAccountIDAndPartition) and checks
// allowedAccountIds against the answer. The stand-in does the same when an STS endpoint is
// configured, with the credentials the process has (the environment, AWS_PROFILE and the
// shared files) or the provider's own `profile` / `accessKey`+`secretKey`+`token` inputs.
// PULUMI_AWS_STANDIN_CALLER_ACCOUNT, when set, names the account instead (the steps of
// `make check-pulumi` that have no STS); with neither, the account is 123456789012.
func resolveCallerAccount(ctx context.Context, cfg resource.PropertyMap, region string) (string, error) {
	if a := os.Getenv(envCallerAccount); a != "" {
		return a, nil
	}
	if !stsEndpointConfigured() {
		return defaultCallerAccount, nil
	}
	if region == "" {
		region = envRegion()
	}
	if region == "" {
		region = "us-east-1"
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(region)}
	if profile := str(cfg, "profile"); profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	if key, secret := str(cfg, "accessKey"), str(cfg, "secretKey"); key != "" && secret != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(key, secret, str(cfg, "token"))))
	}
	awsConfig, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return "", fmt.Errorf("retrieving AWS account details: validating provider credentials: %w", err)
	}
	out, err := sts.NewFromConfig(awsConfig).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf(
			"retrieving AWS account details: validating provider credentials: retrieving caller identity from STS: %w", err)
	}
	return aws.ToString(out.Account), nil
}
