package web

import "errors"

// OIDCConfig configures sign-in through an OpenID Connect provider.
type OIDCConfig struct {
	Issuer string
}

type oidcProvider struct {
	displayName string
}

func newOIDCProvider(cfg OIDCConfig) (*oidcProvider, error) {
	return nil, errors.New("OpenID Connect sign-in is not built yet")
}

func (h *Handler) oidcPages() []page { return nil }
