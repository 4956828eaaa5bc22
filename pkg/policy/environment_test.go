package policy

import (
	"testing"
)

func TestEnvironmentCheck(t *testing.T) {
	for _, tc := range []struct {
		env  Environment
		want string // "" when valid
	}{
		{"dev", ""},
		{"test", ""},
		{"prod", ""},
		{"staging", `environment "staging" is not one of dev, test, prod`},
		{"", `environment "" is not one of dev, test, prod`},
		{"Prod", `environment "Prod" is not one of dev, test, prod`},
	} {
		err := tc.env.Check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.env, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%q: got %v, want %s", tc.env, err, tc.want)
		}
		if got := tc.env.Valid(); got != (tc.want == "") {
			t.Errorf("%q: Valid() = %v, disagrees with Check", tc.env, got)
		}
	}
}

func TestDatasetAllowsEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name string
		envs []Environment
		env  Environment
		want bool
	}{
		{"unrestricted", nil, "prod", true},
		{"unrestricted, any environment", nil, "dev", true},
		{"listed", []Environment{"prod"}, "prod", true},
		{"one of several", []Environment{"dev", "test"}, "test", true},
		{"not listed", []Environment{"prod"}, "dev", false},
		{"empty owner environment", []Environment{"prod"}, "", false},
	} {
		if got := (Dataset{Environments: tc.envs}).AllowsEnvironment(tc.env); got != tc.want {
			t.Errorf("%s: AllowsEnvironment(%q) = %v, want %v", tc.name, tc.env, got, tc.want)
		}
	}
}
