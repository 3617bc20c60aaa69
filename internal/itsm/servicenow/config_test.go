package servicenow_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm/itsmtest"
	"github.com/stewardhq/steward/internal/itsm/servicenow"
	"github.com/stewardhq/steward/internal/secret"
)

func TestConfig_Validate(t *testing.T) {
	t.Parallel()

	valid := func() servicenow.Config {
		return servicenow.Config{
			InstanceURL: "https://dev12345.service-now.com",
			Username:    testUser, Password: secret.New(testPassword),
			ClientID: testClientID, ClientSecret: secret.New(testSecret),
		}
	}
	tests := []struct {
		name   string
		mutate func(*servicenow.Config)
		want   string // part of the error; "" means valid
	}{
		{name: "OAuthPassword", mutate: func(*servicenow.Config) {}},
		{name: "TrailingSlash", mutate: func(c *servicenow.Config) { c.InstanceURL += "/" }},
		{name: "Basic", mutate: func(c *servicenow.Config) { c.ClientID, c.ClientSecret = "", secret.String{} }},
		{name: "ClientCredentials", mutate: func(c *servicenow.Config) {
			c.AuthMode, c.Username, c.Password = servicenow.AuthClientCredentials, "", secret.String{}
		}},
		{name: "LoopbackHTTPAllowed", mutate: func(c *servicenow.Config) { c.InstanceURL, c.AllowInsecureLoopback = "http://127.0.0.1:8081", true }},
		{name: "LocalhostHTTPAllowed", mutate: func(c *servicenow.Config) { c.InstanceURL, c.AllowInsecureLoopback = "http://localhost:8081", true }},
		{name: "IPv6LoopbackHTTPAllowed", mutate: func(c *servicenow.Config) { c.InstanceURL, c.AllowInsecureLoopback = "http://[::1]:8081", true }},
		{name: "MissingURL", mutate: func(c *servicenow.Config) { c.InstanceURL = "" }, want: "InstanceURL is required"},
		{name: "MalformedURL", mutate: func(c *servicenow.Config) { c.InstanceURL = "dev12345.service-now.com" }, want: "is not an absolute URL"},
		{name: "BadEscape", mutate: func(c *servicenow.Config) { c.InstanceURL = "https://dev%zz.service-now.com" }, want: "is not an absolute URL"},
		{name: "HTTP", mutate: func(c *servicenow.Config) { c.InstanceURL = "http://dev12345.service-now.com" }, want: "must use https"},
		{name: "HTTPRemoteEvenWhenAllowed", mutate: func(c *servicenow.Config) {
			c.InstanceURL, c.AllowInsecureLoopback = "http://dev12345.service-now.com", true
		}, want: "only for loopback hosts"},
		{name: "OtherScheme", mutate: func(c *servicenow.Config) { c.InstanceURL = "ftp://dev12345.service-now.com" }, want: "must use https"},
		{name: "Path", mutate: func(c *servicenow.Config) { c.InstanceURL += "/api/now" }, want: "instance root"},
		{name: "Query", mutate: func(c *servicenow.Config) { c.InstanceURL += "/?x-sn-apikey=" + testSecret }, want: "must not have a query"},
		{name: "UserInfo", mutate: func(c *servicenow.Config) {
			c.InstanceURL = "https://admin:" + testPassword + "@dev12345.service-now.com"
		}, want: "must not contain credentials"},
		{name: "OAuthWithoutSecret", mutate: func(c *servicenow.Config) { c.ClientSecret = secret.String{} }, want: "ClientSecret is required"},
		{name: "OAuthWithoutPassword", mutate: func(c *servicenow.Config) { c.Password = secret.String{} }, want: "Password is required"},
		{name: "BasicWithoutUser", mutate: func(c *servicenow.Config) { c.AuthMode, c.Username = servicenow.AuthBasic, "" }, want: "Username is required"},
		{name: "ClientCredentialsWithoutID", mutate: func(c *servicenow.Config) {
			c.AuthMode, c.ClientID = servicenow.AuthClientCredentials, ""
		}, want: "ClientID is required"},
		{name: "UnknownAuthMode", mutate: func(c *servicenow.Config) { c.AuthMode = "kerberos" }, want: `AuthMode "kerberos"`},
		{name: "PageSizeTooLarge", mutate: func(c *servicenow.Config) { c.PageSize = 20000 }, want: "PageSize 20000"},
		{name: "BadTable", mutate: func(c *servicenow.Config) { c.Tables = []string{"incident/../x"} }, want: "Tables:"},
		{name: "BadTableBase", mutate: func(c *servicenow.Config) { c.TableBase = map[string]string{"u_sec": "task"} }, want: "TableBase"},
		{name: "RetryDelays", mutate: func(c *servicenow.Config) { c.MinRetryDelay, c.MaxRetryDelay = 5e9, 1e9 }, want: "MinRetryDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tt.mutate(&cfg)
			err := cfg.Validate()
			_, nerr := servicenow.New(cfg, nil)
			if tt.want == "" {
				require.NoError(t, err)
				require.NoError(t, nerr)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
			require.Error(t, nerr, "New validates too")
			itsmtest.AssertNoSecretLeak(t, err, testPassword, testSecret)
		})
	}
}

func TestConfig_NeverPrintsSecrets(t *testing.T) {
	t.Parallel()

	cfg := servicenow.Config{InstanceURL: "https://x.service-now.com", Username: testUser,
		Password: secret.New(testPassword), ClientID: testClientID, ClientSecret: secret.New(testSecret)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		itsmtest.AssertNoSecretLeak(t, fmt.Sprintf(verb, cfg), testPassword, testSecret)
	}
}
