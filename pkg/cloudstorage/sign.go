package cloudstorage

import (
	"context"
	"fmt"
	"net/http"

	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"

	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/policy"
)

// MethodAccess is the access kind a signed URL's method needs; a PUT's depends on the space
// (policy.UploadInto), AccessUpload stands for it here.
var MethodAccess = map[string]policy.Access{
	http.MethodGet:    policy.AccessRead,
	http.MethodHead:   policy.AccessRead,
	http.MethodPut:    policy.AccessUpload,
	http.MethodDelete: policy.AccessDelete,
}

// AccessFor is the access kind a method needs in space s (an error for methods signed URLs do
// not take): a PUT is an upload of the kind the space takes.
func AccessFor(method string, s policy.Space) (policy.Access, error) {
	a, ok := MethodAccess[method]
	if !ok {
		return "", fmt.Errorf("%w: method %q is not GET, HEAD, PUT or DELETE", ErrBadInput, method)
	}
	if a == policy.AccessUpload {
		a = policy.UploadInto(s)
	}
	return a, nil
}

// SignedURL signs a V4 URL for one object of t's space with the org's service account, through
// IAM Credentials' SignBlob (no key ever leaves Google). It lives as long as t's access kind's
// credentials. t.Access must be the method's (AccessFor).
func (s *Service) SignedURL(ctx context.Context, t Target, object, method string) (brokerapi.SignedURL, error) {
	a, err := AccessFor(method, policy.Space{LoadingZone: t.LoadingZone})
	if err != nil {
		return brokerapi.SignedURL{}, err
	}
	if a != t.Access {
		return brokerapi.SignedURL{}, fmt.Errorf("%w: %s needs %s access, the target is for %s", ErrBadInput, method, a, t.Access)
	}
	name, err := objectName(t, object)
	if err != nil {
		return brokerapi.SignedURL{}, err
	}
	now := s.opts.Now()
	expires := now.Add(s.opts.Lifetimes[a])
	var signErr error
	u, err := v4{
		Bucket: t.Bucket, Object: name, Method: method, Account: t.ServiceAccount,
		Host: s.opts.SignedURLHost, Insecure: s.opts.SignedURLInsecure, Now: now, Expires: expires,
		Sign: func(b []byte) ([]byte, error) {
			ctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			resp, err := s.opts.IAM.SignBlob(ctx, &credentialspb.SignBlobRequest{Name: resource(t.ServiceAccount), Payload: b})
			if err != nil {
				signErr = classify("IAM Credentials SignBlob for "+t.ServiceAccount, err)
				return nil, signErr
			}
			return resp.GetSignedBlob(), nil
		},
	}.url()
	s.metrics.signed(method, err)
	if signErr != nil {
		return brokerapi.SignedURL{}, signErr
	}
	if err != nil {
		return brokerapi.SignedURL{}, fmt.Errorf("%w: signing: %v", ErrBadInput, err)
	}
	return brokerapi.SignedURL{URL: u, Method: method, ExpiresAt: expires, Bucket: t.Bucket, Object: name}, nil
}
