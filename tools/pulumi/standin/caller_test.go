package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// fakeSTS answers GetCallerIdentity with the account of the access key that signed the
// request, as STS does, and 403 InvalidClientTokenId for a key it does not know. It records
// each request's Authorization header.
type fakeSTS struct {
	mu       sync.Mutex
	accounts map[string]string
	seen     []string
}

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	f.mu.Lock()
	f.seen = append(f.seen, auth)
	f.mu.Unlock()
	_ = r.ParseForm()
	if r.Form.Get("Action") != "GetCallerIdentity" {
		http.Error(w, "unexpected action "+r.Form.Get("Action"), http.StatusBadRequest)
		return
	}
	for key, account := range f.accounts {
		if strings.Contains(auth, "Credential="+key+"/") {
			w.Header().Set("Content-Type", "text/xml")
			fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<GetCallerIdentityResult><Arn>arn:aws:iam::%[1]s:user/admin</Arn><UserId>AIDAEXAMPLE</UserId>
<Account>%[1]s</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`, account)
			return
		}
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>
<Message>The security token included in the request is invalid.</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
}

func (f *fakeSTS) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

// withSTS starts the fake on 127.0.0.1 and points the process's STS endpoint at it, with no
// credentials of the caller's own environment in play.
func withSTS(t *testing.T) *fakeSTS {
	t.Helper()
	f := &fakeSTS{accounts: map[string]string{"AKIASOURCE": "111111111111", "AKIATARGET": "222222222222"}}
	server := httptest.NewServer(f)
	t.Cleanup(server.Close)
	dir := t.TempDir()
	for name, value := range map[string]string{
		"AWS_ENDPOINT_URL_STS":                server.URL,
		"AWS_ENDPOINT_URL":                    "",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "",
		envCallerAccount:                      "",
		"AWS_EC2_METADATA_DISABLED":           "true",
		"AWS_ACCESS_KEY_ID":                   "",
		"AWS_SECRET_ACCESS_KEY":               "",
		"AWS_SESSION_TOKEN":                   "",
		"AWS_PROFILE":                         "",
		"AWS_CONFIG_FILE":                     filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE":         filepath.Join(dir, "credentials"),
	} {
		t.Setenv(name, value)
	}
	credentials := "[target]\naws_access_key_id = AKIATARGET\naws_secret_access_key = t\n" +
		"[source]\naws_access_key_id = AKIASOURCE\naws_secret_access_key = s\n"
	if err := os.WriteFile(filepath.Join(dir, "credentials"), []byte(credentials), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func configure(t *testing.T, p *awsProvider, args map[string]any) error {
	t.Helper()
	_, err := p.Configure(ctx, &pulumirpc.ConfigureRequest{Args: props(t, args), AcceptSecrets: true})
	return err
}

func invokedAccount(t *testing.T, p *awsProvider) string {
	t.Helper()
	resp, err := p.Invoke(ctx, &pulumirpc.InvokeRequest{Tok: "aws:index/getCallerIdentity:getCallerIdentity"})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetReturn().GetFields()["accountId"].GetStringValue()
}

func TestCallerAccountComesFromSTSWithTheRunsCredentials(t *testing.T) {
	f := withSTS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATARGET")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "t")
	p := newProvider(fixtureSchema(t), nil0())
	err := configure(t, p, map[string]any{"region": "eu-west-2", "allowedAccountIds": []any{"111111111111"}})
	if err == nil || err.Error() != "AWS account ID not allowed: 222222222222" {
		t.Fatalf("want the target account refused, got %v", err)
	}
	if err := configure(t, p, map[string]any{"region": "eu-west-2", "allowedAccountIds": []any{"222222222222"}}); err != nil {
		t.Fatal(err)
	}
	if got := invokedAccount(t, p); got != "222222222222" {
		t.Fatalf("getCallerIdentity answered %s", got)
	}
	calls := f.calls()
	if len(calls) != 2 || !strings.Contains(calls[0], "/eu-west-2/sts/aws4_request") {
		t.Fatalf("STS asked %d times, signed %v", len(calls), calls)
	}
}

func TestAProfileNamesTheCredentials(t *testing.T) {
	withSTS(t)
	t.Setenv("AWS_PROFILE", "source")
	p := newProvider(fixtureSchema(t), nil0())
	if err := configure(t, p, map[string]any{"region": "eu-west-1", "allowedAccountIds": []any{"111111111111"}}); err != nil {
		t.Fatal(err)
	}
	// The provider's own profile input wins over AWS_PROFILE.
	err := configure(t, p, map[string]any{"region": "eu-west-1", "profile": "target",
		"allowedAccountIds": []any{"111111111111"}})
	if err == nil || err.Error() != "AWS account ID not allowed: 222222222222" {
		t.Fatalf("want the profile input's account, got %v", err)
	}
	// And static keys in the provider's inputs win over both.
	if err := configure(t, p, map[string]any{"region": "eu-west-1", "profile": "target", "accessKey": "AKIASOURCE",
		"secretKey": "s", "allowedAccountIds": []any{"111111111111"}}); err != nil {
		t.Fatal(err)
	}
}

func TestCredentialsSTSRefusesFailConfigureAsTheProviderDoes(t *testing.T) {
	withSTS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIASTRANGER")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "x")
	p := newProvider(fixtureSchema(t), nil0())
	err := configure(t, p, map[string]any{"region": "eu-west-1"})
	if err == nil || !strings.Contains(err.Error(), "retrieving caller identity from STS") ||
		!strings.Contains(err.Error(), "InvalidClientTokenId") {
		t.Fatalf("want the STS refusal, got %v", err)
	}
}

func TestTheEnvironmentsAccountWinsAndNoEndpointMeansNoSTS(t *testing.T) {
	f := withSTS(t)
	t.Setenv(envCallerAccount, "333333333333")
	p := newProvider(fixtureSchema(t), nil0())
	if err := configure(t, p, map[string]any{"region": "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	if got := invokedAccount(t, p); got != "333333333333" {
		t.Fatalf("getCallerIdentity answered %s", got)
	}
	t.Setenv(envCallerAccount, "")
	t.Setenv("AWS_ENDPOINT_URL_STS", "")
	if err := configure(t, p, map[string]any{"region": "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	if got := invokedAccount(t, p); got != defaultCallerAccount {
		t.Fatalf("getCallerIdentity answered %s", got)
	}
	// An endpoint for every service counts; one the environment says to ignore does not.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
	if stsEndpointConfigured() {
		t.Fatal("an ignored endpoint is configured")
	}
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "")
	if !stsEndpointConfigured() {
		t.Fatal("AWS_ENDPOINT_URL is an STS endpoint too")
	}
	if n := len(f.calls()); n != 0 {
		t.Fatalf("STS asked %d times", n)
	}
}
