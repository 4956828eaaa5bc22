package policy

import "github.com/warden-dev/warden/internal/charset"

// The shapes of the names a policy holds, each defined once; the bracket expressions in the
// comments are what they accept (names_test.go holds them as regular expressions and fuzzes
// one against the other).
var (
	lowerDigits     = charset.New("a-z0-9")
	lowerDigitsDash = charset.New("a-z0-9-")
	alnum           = charset.New("A-Za-z0-9")
	prefixChars     = charset.New("A-Za-z0-9._=-")

	// [A-Za-z0-9][A-Za-z0-9._-]{0,127}; snapshot names too.
	datasetID = charset.Name{First: alnum, Rest: charset.New("A-Za-z0-9._-"), Min: 1, Max: 128}
	// [A-Za-z0-9][A-Za-z0-9._@+-]{0,254}
	userName = charset.Name{First: alnum, Rest: charset.New("A-Za-z0-9._@+-"), Min: 1, Max: 255}
	// [a-z0-9][a-z0-9-]{0,62}; space names too.
	orgName = charset.Name{First: lowerDigits, Rest: lowerDigitsDash, Min: 1, Max: 63}
	// [a-z][a-z0-9-]{4,28}[a-z0-9]: a GCP project id.
	projectID = charset.Name{First: charset.New("a-z"), Rest: lowerDigitsDash, Last: lowerDigits, Min: 6, Max: 30}
	// Kubernetes' name rules (RFC 1123), spelled out here so that the sidecar, which parses
	// policies in local mode, does not link the Kubernetes libraries: a label is
	// [a-z0-9]([-a-z0-9]*[a-z0-9])?, a subdomain labels joined by '.' (the callers bound the
	// lengths: 63 for a label, 253 for a subdomain).
	dns1123Label = charset.Name{First: lowerDigits, Rest: lowerDigitsDash, Last: lowerDigits, Min: 1}
	// Cloud Storage's bucket naming rules, dotted names aside (they need domain verification):
	// [a-z0-9][a-z0-9_-]{1,61}[a-z0-9].
	bucketName = charset.Name{First: lowerDigits, Rest: charset.New("a-z0-9_-"), Last: lowerDigits, Min: 3, Max: 63}
	// [A-Za-z][A-Za-z0-9._~+%-]{2,254}: a Pub/Sub topic id.
	topicID = charset.Name{First: charset.New("A-Za-z"), Rest: charset.New("A-Za-z0-9._~+%-"), Min: 3, Max: 255}
	// A part of a space's prefix, [A-Za-z0-9._=-]+, parts joined by '/' with one at the end.
	prefixPart = charset.Name{First: prefixChars, Rest: prefixChars, Min: 1}
)
