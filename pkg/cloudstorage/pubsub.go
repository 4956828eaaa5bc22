package cloudstorage

import (
	"context"
	"fmt"

	"cloud.google.com/go/pubsub/v2"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// PubSub publishes with cloud.google.com/go/pubsub/v2. Endpoint points it at another server
// (pstest or the emulator); Insecure talks to it without TLS or credentials (emulators only).
// A client per commit: commits are rare, and each publishes as its own org's account.
type PubSub struct {
	Endpoint string
	Insecure bool
}

// Publish implements Publisher and waits until Pub/Sub has the message.
func (p PubSub) Publish(ctx context.Context, tok *oauth2.Token, project, topic string, data []byte, attrs map[string]string) (string, error) {
	var opts []option.ClientOption
	if p.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(p.Endpoint))
	}
	if p.Insecure {
		opts = append(opts, option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	} else {
		opts = append(opts, option.WithTokenSource(oauth2.StaticTokenSource(tok)))
	}
	c, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return "", fmt.Errorf("%w: Pub/Sub client: %v", ErrUnavailable, err)
	}
	defer c.Close()
	pub := c.Publisher(topic)
	defer pub.Stop()
	id, err := pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs}).Get(ctx)
	if err != nil {
		return "", classify("Pub/Sub publish to projects/"+project+"/topics/"+topic, err)
	}
	return id, nil
}
