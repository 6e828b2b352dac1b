package demo

import (
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
)

// Persona is one tour character with a ready-made token.
type Persona struct {
	Var  string // shell variable for the token
	Role string
	ID   uuid.UUID
	Who  string
}

// Personas lists the people of the tour.
func (d *Dataset) Personas() []Persona {
	c := d.Creators[0]
	return []Persona{
		{"FAN_TOKEN", "fan", d.FanWithoutSubscription, "Nora, a fan without a subscription"},
		{"GOLD_TOKEN", "fan", d.GoldFan, "Gabe, a Gold subscriber of " + c.Handle},
		{"CREATOR_TOKEN", "creator", c.ID, c.Name + ", a creator"},
		{"COUNCIL_TOKEN", "council", d.Council[0], "Council Member 1"},
		{"ADMIN_TOKEN", "admin", d.Admin, "an admin"},
		{"SERVICE_TOKEN", "service", d.Service, "the payments importer (service role)"},
	}
}

// Env renders shell exports of the personas' tokens and the ids the tour uses; mint signs a
// token for a user and role.
func (d *Dataset) Env(mint func(uuid.UUID, string) (string, error)) (string, error) {
	var b strings.Builder
	for _, p := range d.Personas() {
		tok, err := mint(p.ID, p.Role)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "export %s=%s  # %s\n", p.Var, tok, p.Who)
	}
	fmt.Fprintf(&b, "export CREATOR_ID=%s  # %s\n", d.Creators[0].ID, d.Creators[0].Handle)
	fmt.Fprintf(&b, "export GOLD_FAN_ID=%s\n", d.GoldFan)
	fmt.Fprintf(&b, "export COMMENT_ID=%s  # a demo comment on %s's page\n", CommentID(0), d.Creators[0].Handle)
	return b.String(), nil
}

// WriteTour prints where the tokens are and a few requests to try.
func (d *Dataset) WriteTour(w io.Writer, apiURL, envFile string) {
	fmt.Fprintf(w, `Demo data: %d creators with Bronze/Silver/Gold tiers, %d fans, %d days of revenue.
Tokens for the tour (valid 30 days) are in %s:
  source %s
  curl -s -H "Authorization: Bearer $GOLD_TOKEN" %s/api/v1/creators/$CREATOR_ID/tiers
  curl -s -H "Authorization: Bearer $GOLD_TOKEN" %s/api/v1/subscriptions
  curl -s -H "Authorization: Bearer $CREATOR_TOKEN" "%s/api/v1/revenue-events?limit=5"
  curl -s -H "Authorization: Bearer $FAN_TOKEN" %s/api/v1/revenue-events      # 403: fans see no revenue
Mint others with: orchestrator token --user <id> --role <fan|creator|council|admin|service>

`, len(d.Creators), d.Fans, Days, envFile, envFile, apiURL, apiURL, apiURL, apiURL)
	writeCommentTour(w, apiURL)
}
