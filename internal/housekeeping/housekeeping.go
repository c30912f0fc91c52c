// Package housekeeping is Gatehouse's periodic maintenance, done once per cluster. Each task
// is a River periodic job: only River's elected leader enqueues periodic jobs, each unique
// within its period (so two nodes racing for leadership, or a new leader's run-on-start,
// cannot enqueue a period's job twice), and whichever node fetches the job works it.
//
//   - housekeeping.tenant_purge, every minute: tenants past their deletion grace period are
//     purged (tenant.Service.PurgeDue).
//   - housekeeping.rotation, every minute: the per-tenant housekeeping — sweep of expired
//     rows, SSO certificate-expiry notices, the OpenID Provider's signing keys (scheduled
//     rotation, retirement of superseded keys, deletion of expired ones) and its expired
//     authorization requests and tokens, the safety net for scheduled account purges — on
//     the next BatchSize tenants. The position is stored in the database (migration 000012),
//     so a restart or a new leader continues the rotation rather than starting it over.
//   - housekeeping.metadata_refresh, every GATEHOUSE_SSO_METADATA_REFRESH: IdP metadata URLs
//     are re-fetched (a failure keeps the last good metadata and tells the admin).
//
// Every task runs once at a leader's start too, unless it already ran in the current period:
// River's scheduler keeps its timetable in memory, so without that a cluster restarted more
// often than every six hours would never refresh metadata.
package housekeeping

import (
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Queue is the River queue of the housekeeping jobs. A queue of their own keeps a long
// metadata refresh from holding up account purges and mail, and keeps the jobs away from
// nodes of an older version (which do not work this queue) during a rolling upgrade.
const Queue = "housekeeping"

// Interval is how often the tenant purge and the rotation run.
const Interval = time.Minute

// BatchSize is how many tenants the rotation visits per run: every tenant once every
// 50 minutes at 10,000 tenants, and a bounded background load however many there are
// (docs/performance.md).
const BatchSize = 200

// TenantPurgeArgs is the job that purges the tenants whose grace period is over.
type TenantPurgeArgs struct{}

// Kind names the job.
func (TenantPurgeArgs) Kind() string { return "housekeeping.tenant_purge" }

// InsertOpts puts the job on the housekeeping queue, without retries.
func (TenantPurgeArgs) InsertOpts() river.InsertOpts { return insertOpts() }

// RotationArgs is the job that runs the per-tenant housekeeping on the next batch.
type RotationArgs struct{}

// Kind names the job.
func (RotationArgs) Kind() string { return "housekeeping.rotation" }

// InsertOpts puts the job on the housekeeping queue, without retries.
func (RotationArgs) InsertOpts() river.InsertOpts { return insertOpts() }

// MetadataRefreshArgs is the job that re-fetches the IdP metadata URLs.
type MetadataRefreshArgs struct{}

// Kind names the job.
func (MetadataRefreshArgs) Kind() string { return "housekeeping.metadata_refresh" }

// InsertOpts puts the job on the housekeeping queue, without retries.
func (MetadataRefreshArgs) InsertOpts() river.InsertOpts { return insertOpts() }

// insertOpts: one attempt. The next period's run is the retry; a failed run retried with
// River's backoff would only overlap it. A failure stays visible as a discarded job and on
// the job's span.
func insertOpts() river.InsertOpts { return river.InsertOpts{Queue: Queue, MaxAttempts: 1} }

// Schedule says how often the periodic jobs run.
type Schedule struct {
	Maintenance     time.Duration // tenant purge and rotation (0 or less: Interval)
	MetadataRefresh time.Duration // metadata refresh (0 or less: off)
}

// PeriodicJobs returns the periodic jobs for the River client (river.Config.PeriodicJobs or
// Client.PeriodicJobs().AddMany). The client must work Queue with the workers of this
// package.
func PeriodicJobs(s Schedule) []*river.PeriodicJob {
	every := s.Maintenance
	if every <= 0 {
		every = Interval
	}
	jobs := []*river.PeriodicJob{periodic(TenantPurgeArgs{}, every), periodic(RotationArgs{}, every)}
	if s.MetadataRefresh > 0 {
		jobs = append(jobs, periodic(MetadataRefreshArgs{}, s.MetadataRefresh))
	}
	return jobs
}

// periodic enqueues args every interval, and at a leader's start, at most once per period.
// Periods are whole multiples of the interval in UTC (a run at 12:00:59 and a new leader's
// at 12:01:01 fall in two one-minute periods). Besides River's default unique states,
// discarded counts: a run that failed is still its period's run.
func periodic(args river.JobArgs, every time.Duration) *river.PeriodicJob {
	unique := river.UniqueOpts{
		ByPeriod: max(every, time.Second), // River's least period
		ByState:  append(rivertype.UniqueOptsByStateDefault(), rivertype.JobStateDiscarded),
	}
	return river.NewPeriodicJob(river.PeriodicInterval(every), func() (river.JobArgs, *river.InsertOpts) {
		return args, &river.InsertOpts{UniqueOpts: unique}
	}, &river.PeriodicJobOpts{ID: args.Kind(), RunOnStart: true})
}
