package testharness

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// The realistic database of the backup benchmarks (logical, BenchmarkBackupPipeline, and
// physical, BenchmarkPITRTargets): one table of rows mixing prose-like text, numbers, jsonb,
// uuids and timestamps, generated to a size.

// benchVocabulary gives the generated text the compressibility of prose: words drawn at
// random, so rows repeat words but not whole sentences.
var benchVocabulary = strings.Fields(`account active address after again against agreement amount
	annual answer april archive artist asset audio august author balance bank before billing
	blue board budget build button cancel capital card career cart catalog change channel
	charge check city claim client close cloud code collection comment company complete
	content contract country course create credit currency customer daily data date deal
	december default delivery deposit design detail device digital discount document domain
	download draft east edit email energy entry error event exchange expense export family
	february feature fee file final finance first follow format friday frame fund gallery
	general gift global green group growth guide history home hour image import income
	invoice issue item january july june key label language large last launch layer ledger
	level license light limit link list local login march market media member message method
	monday month music name network news next north notice number october offer office order
	owner package page partner payment payout pending period photo plan platform policy post
	premium price print private product profile project public purchase quarter question
	receipt record red refund region release report request reserve return review reward
	right round sale saturday schedule search season second secure september service session
	setting share shipping short signal simple single size social source south stage standard
	status storage store stream studio subscription sunday support system table target tax
	team template term thursday ticket title today token total track transfer trial tuesday
	update upload user value vendor version video view wallet wednesday week west white window
	withdrawal work world year yellow`)

// GenerateBenchDB fills the database at url with one table of rows mixing text (random words), numbers, jsonb,
// uuids and timestamps until the database reaches targetBytes.
func GenerateBenchDB(b testing.TB, url string, targetBytes int64) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(b, err)
	defer pool.Close()
	quoted := make([]string, len(benchVocabulary))
	for i, w := range benchVocabulary {
		quoted[i] = "'" + w + "'"
	}
	vocab := "ARRAY[" + strings.Join(quoted, ",") + "]"
	n := len(benchVocabulary)
	_, err = pool.Exec(ctx, `
		CREATE TABLE bench_events (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			ref uuid NOT NULL,
			created timestamptz NOT NULL,
			kind text NOT NULL,
			amount numeric(14,2) NOT NULL,
			quantity integer NOT NULL,
			score double precision NOT NULL,
			title text NOT NULL,
			body text NOT NULL,
			meta jsonb NOT NULL);
		CREATE TABLE bench_meta (target_bytes bigint NOT NULL, complete boolean NOT NULL)`)
	require.NoError(b, err)
	// word(k) is a random vocabulary word; the g reference makes the subqueries correlated so
	// they run per row.
	word := func() string { return fmt.Sprintf("(%s)[1 + floor(random() * %d)::int]", vocab, n) }
	words := func(min, spread int) string {
		return fmt.Sprintf("(SELECT string_agg(%s, ' ') FROM generate_series(1, %d + (g %% %d)))", word(), min, spread)
	}
	insert := `INSERT INTO bench_events (ref, created, kind, amount, quantity, score, title, body, meta)
		SELECT gen_random_uuid(),
			timestamptz '2023-01-01' + random() * interval '900 days',
			` + word() + `,
			round((random() * 5000)::numeric, 2),
			(random() * 100)::int,
			random() * 1000,
			` + words(4, 5) + `,
			` + words(25, 30) + `,
			jsonb_build_object('customer', gen_random_uuid(), 'tags', ARRAY[` + word() + `, ` + word() + `],
				'price', round((random() * 200)::numeric, 2), 'count', (random() * 50)::int,
				'note', ` + words(3, 6) + `, 'paid', random() < 0.8)
		FROM generate_series(1, $1) g`
	const batch = 40000
	for {
		var size int64
		require.NoError(b, pool.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&size))
		if size >= targetBytes {
			break
		}
		// Two connections at once: the machine has two cores.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = pool.Exec(ctx, insert, batch)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(b, err)
		}
	}
	_, err = pool.Exec(ctx, "VACUUM ANALYZE bench_events")
	require.NoError(b, err)
	_, err = pool.Exec(ctx, "INSERT INTO bench_meta VALUES ($1, true)", targetBytes)
	require.NoError(b, err)
}

// LoadAvg is uptime's 1, 5 and 15 minute load averages, printed beside every benchmark's
// figures (the machine is shared).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
