package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/store"
)

// newTokensCommand manages API tokens, through the API (an owner token) or,
// with --db, directly on the database file: that is how the first token is
// made, whether or not 'steward serve' is running.
func newTokensCommand(g *globals) *cobra.Command {
	var dbPath string
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Create, list and revoke API tokens (roles: reader, contributor, security-admin, owner)",
		Long: `API tokens authenticate every client verb and API call. Each has a name
(recorded in history and the audit log), a role, an optional scope that limits
it to resources inside it, and an optional expiry.

The first token: run on the server's machine with --db pointing at the
database file (it works whether or not 'steward serve' is running):

  steward tokens create --db ./steward.db --name admin --role owner

Later ones can be made through the API by an owner token (without --db).
See docs/security.md.`,
	}
	cmd.PersistentFlags().StringVar(&dbPath, "db", "", "work directly on this SQLite database file instead of through the API")

	var create struct {
		name, role, scope, expires string
	}
	createCmd := &cobra.Command{
		Use:   "create",
		Short: "Create a token and print its secret (shown once)",
		Args:  noArgs("tokens create takes flags only, e.g. --name ci-import --role contributor"),
		RunE: func(cmd *cobra.Command, args []string) error {
			role, err := steward.ParseRole(create.role)
			if err != nil {
				return err
			}
			var issued *steward.IssuedToken
			if dbPath != "" {
				exp, err := auth.ParseExpiry(create.expires, time.Now())
				if err != nil {
					return err
				}
				err = withDatabase(cmd.Context(), dbPath, func(db *store.DB) error {
					secret, tok, err := auth.Issue(cmd.Context(), db, auth.TokenRequest{Name: create.name, Role: role,
						Scope: steward.Scope(create.scope), ExpiresAt: exp}, localActor())
					issued = &steward.IssuedToken{Secret: secret, Token: tok}
					return err
				})
				if err != nil {
					return err
				}
			} else {
				c, err := g.client()
				if err != nil {
					return err
				}
				if issued, err = c.CreateToken(cmd.Context(), steward.TokenCreate{Name: create.name, Role: role,
					Scope: steward.Scope(create.scope), Expires: create.expires}); err != nil {
					return err
				}
			}
			return g.render(issued, func(w *tabwriter.Writer) {
				fmt.Fprintf(g.stderr, "Token %q (%s) created. Copy it now: it is not shown again.\n", issued.Name, issued.Role)
				fmt.Fprintln(w, issued.Secret)
			})
		},
	}
	f := createCmd.Flags()
	f.StringVar(&create.name, "name", "", "token name, recorded as the actor of every change made with it (e.g. alice@example.com, ci-import)")
	f.StringVar(&create.role, "role", "", "reader, contributor, security-admin or owner")
	f.StringVar(&create.scope, "scope", "", "limit the token to resources inside this scope, e.g. /subscriptions/<id>")
	f.StringVar(&create.expires, "expires", "", "lifetime, e.g. 90d or 12h (default: never)")
	_ = createCmd.MarkFlagRequired("name")
	_ = createCmd.MarkFlagRequired("role")

	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  noArgs("tokens list takes no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var items []*steward.Token
			if dbPath != "" {
				err := withDatabase(cmd.Context(), dbPath, func(db *store.DB) error {
					var err error
					items, err = db.FindTokens(cmd.Context())
					return err
				})
				if err != nil {
					return err
				}
			} else {
				c, err := g.client()
				if err != nil {
					return err
				}
				page, err := c.ListTokens(cmd.Context())
				if err != nil {
					return err
				}
				for i := range page.Items {
					items = append(items, &page.Items[i])
				}
			}
			if items == nil {
				items = []*steward.Token{}
			}
			return g.render(items, func(w *tabwriter.Writer) {
				row(w, "ID", "NAME", "ROLE", "SCOPE", "PREFIX", "EXPIRES", "LAST USED", "STATE")
				now := time.Now()
				for _, t := range items {
					state := "active"
					switch {
					case t.RevokedAt != nil:
						state = "revoked " + day(*t.RevokedAt)
					case !t.Active(now):
						state = "expired"
					}
					row(w, t.ID, t.Name, t.Role, orDash(string(t.Scope)), t.Prefix+"…", dayPtr(t.ExpiresAt), dayPtr(t.LastUsedAt), state)
				}
			})
		},
	}

	revokeCmd := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a token: it stops working at once",
		Args:  exactArgs(1, "tokens revoke needs the token's ID or name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var tok *steward.Token
			id, _ := strconv.ParseInt(args[0], 10, 64)
			if dbPath != "" {
				err := withDatabase(cmd.Context(), dbPath, func(db *store.DB) error {
					return db.WithTx(cmd.Context(), func(tx *store.Tx) error {
						var err error
						tok, err = tx.RevokeToken(cmd.Context(), id, args[0], localActor())
						return err
					})
				})
				if err != nil {
					return err
				}
			} else {
				c, err := g.client()
				if err != nil {
					return err
				}
				if id == 0 {
					if id, err = tokenIDByName(cmd.Context(), g, args[0]); err != nil {
						return err
					}
				}
				if tok, err = c.RevokeToken(cmd.Context(), id); err != nil {
					return err
				}
			}
			return g.render(tok, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Token %d (%s) revoked.\n", tok.ID, tok.Name)
			})
		},
	}
	cmd.AddCommand(createCmd, listCmd, revokeCmd)
	return cmd
}

func tokenIDByName(ctx context.Context, g *globals, name string) (int64, error) {
	c, err := g.client()
	if err != nil {
		return 0, err
	}
	page, err := c.ListTokens(ctx)
	if err != nil {
		return 0, err
	}
	for _, t := range page.Items {
		if t.Name == name && t.RevokedAt == nil {
			return t.ID, nil
		}
	}
	return 0, fmt.Errorf("no active token is named %q", name)
}

// withDatabase opens an existing database file (never creating one: a
// mistyped path must not yield a token for an empty database). A PostgreSQL
// database must exist already: the server refuses to connect to one that
// does not.
func withDatabase(ctx context.Context, path string, fn func(db *store.DB) error) error {
	shown := store.RedactURL(path)
	if !store.IsPostgresURL(path) {
		if _, err := os.Stat(config.SQLitePath(path)); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("database %s does not exist; check --db, or start 'steward serve --db %s' once to create it", path, path)
		}
	}
	db, err := store.Open(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("open %s: %w", shown, err)
	}
	ferr := fn(db)
	if err := db.Close(); ferr == nil && err != nil {
		return fmt.Errorf("close %s: %w", shown, err)
	}
	return ferr
}

// localActor names who acted directly on the database file. The colon
// keeps it apart from every token name.
func localActor() string { return "cli:" + defaultActor() }

func dayPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return day(*t)
}

func newLoginCommand(g *globals) *cobra.Command {
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Save an API token for --server in your config directory (mode 0600)",
		Long: `Reads a token (from --token-file, else standard input), checks it against
the server, and saves it for that server URL in your user config directory
(e.g. ~/.config/steward/credentials.json, mode 0600). Client verbs then use it
without --token.`,
		Args: noArgs("login takes no arguments; give the token on standard input or with --token-file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = cmd.InOrStdin()
			if tokenFile != "" {
				f, err := os.Open(tokenFile)
				if err != nil {
					return fmt.Errorf("read token: %w", err)
				}
				defer f.Close()
				r = f
			} else if isTerminal(os.Stdin) {
				fmt.Fprintf(g.stderr, "Paste an API token for %s: ", g.server)
			}
			line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read token: %w", err)
			}
			token := strings.TrimSpace(line)
			if token == "" {
				return errors.New("no token given; create one with 'steward tokens create' (see docs/security.md)")
			}
			g.tokens.flag = token
			c, err := g.client()
			if err != nil {
				return err
			}
			me, err := c.Me(cmd.Context())
			if err != nil {
				return fmt.Errorf("check the token with %s: %w", g.server, err)
			}
			path, err := g.tokens.credentialsPath()
			if err != nil {
				return err
			}
			creds, err := readCredentials(path)
			if err != nil {
				return err
			}
			creds.Servers[normalizeServer(g.server)] = token
			if err := writeCredentials(path, creds); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Logged in to %s as %s (%s). Saved in %s.\n", g.server, me.Name, me.Role, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "read the token from this file")
	return cmd
}

func newLogoutCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the token saved for --server",
		Args:  noArgs("logout takes no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := g.tokens.credentialsPath()
			if err != nil {
				return err
			}
			creds, err := readCredentials(path)
			if err != nil {
				return err
			}
			if _, ok := creds.Servers[normalizeServer(g.server)]; !ok {
				fmt.Fprintf(g.stdout, "No token saved for %s.\n", g.server)
				return nil
			}
			delete(creds.Servers, normalizeServer(g.server))
			if err := writeCredentials(path, creds); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Forgot the token for %s.\n", g.server)
			return nil
		},
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func noArgs(msg string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return errors.New(msg)
		}
		return nil
	}
}

func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return errors.New(msg)
		}
		return nil
	}
}
