package steward

import "testing"

func TestRoleAllows(t *testing.T) {
	order := []Role{RoleReader, RoleContributor, RoleSecurityAdmin, RoleOwner}
	for i, have := range order {
		for j, need := range order {
			if got, want := have.Allows(need), i >= j; got != want {
				t.Errorf("%s allows %s: %v, want %v", have, need, got, want)
			}
		}
		if have.Allows("") || have.Allows("admin") {
			t.Errorf("%s allows an unknown role", have)
		}
		if Role("admin").Allows(have) {
			t.Errorf("an unknown role allows %s", have)
		}
	}
	for in, want := range map[string]Role{"Reader": RoleReader, " owner ": RoleOwner, "security_admin": RoleSecurityAdmin, "security-admin": RoleSecurityAdmin} {
		if got, err := ParseRole(in); err != nil || got != want {
			t.Errorf("ParseRole(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseRole("root"); err == nil {
		t.Error("ParseRole(root) succeeded")
	}
}

func TestValidateTokenName(t *testing.T) {
	for _, ok := range []string{"alice@example.com", "ci-import", "a", "A.b_c+d"} {
		if err := ValidateTokenName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "integration:prod", "cli:alice", "System", "servicenow", "a b", "ä", string(make([]byte, 101))} {
		if ValidateTokenName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
