package cloudstorage

import (
	"context"

	credentials "cloud.google.com/go/iam/credentials/apiv1"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// NewIAMCredentialsClient dials IAM Credentials with Application Default Credentials (the
// broker's own GCP identity), or at endpoint; insecureLocal talks to it without TLS or
// credentials (the in-process fake of tests and the demo).
func NewIAMCredentialsClient(ctx context.Context, endpoint string, insecureLocal bool) (*credentials.IamCredentialsClient, error) {
	var opts []option.ClientOption
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
	}
	if insecureLocal {
		opts = append(opts, option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	return credentials.NewIamCredentialsClient(ctx, opts...)
}

var _ IAMCredentials = (*credentials.IamCredentialsClient)(nil)
