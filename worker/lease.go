package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/e2evlp/vlp/coordinator"
)

// leaseResult is what rank 0 broadcasts after leasing for every rank.
type leaseResult struct {
	Grants   []coordinator.LeaseGrant `json:"grants,omitempty"`
	Complete bool                     `json:"complete,omitempty"`
	// Stopped: the operator stopped the job (the coordinator refuses leases);
	// every rank finishes at this step boundary.
	Stopped bool   `json:"stopped,omitempty"`
	Err     string `json:"err,omitempty"`
}

// errJobStopped: the lease broadcast said the job was stopped; the step is
// not taken and every rank finishes together.
var errJobStopped = errors.New("worker: the job was stopped")

// lease tops up every rank's queue for the next step. The ranks agree on
// who needs units from the shared levels, so they agree on whether a lease
// happens; rank 0 asks the coordinator for all of them (one request serves
// the asks in rank order, so the assignment is deterministic) and
// broadcasts the grants. A rank only leases what the next step needs: a
// checkpoint's cursors then describe every queue completely.
func (w *Worker) lease(ctx context.Context, ring Collective, gen coordinator.GenerationInfo, rank int) error {
	size := len(gen.Members)
	deficit := make([]int, size)
	need := len(w.rec.Reclaim) > 0
	for r := range size {
		deficit[r] = max(0, rankBatch(w.job.GlobalBatch, size, r)-w.levels[r])
		need = need || deficit[r] > 0
	}
	if !need {
		return nil
	}
	w.leaseOpen = true
	var payload []byte
	if rank == 0 {
		res, err := w.leaseFor(ctx, gen, deficit)
		switch {
		case errors.Is(err, coordinator.ErrJobNotRunning) && len(res.Grants) == 0:
			res.Stopped = true
		case err != nil:
			res.Err = err.Error()
		}
		payload, _ = json.Marshal(res)
	}
	data, err := ring.Broadcast(ctx, 0, payload)
	if err != nil {
		return fmt.Errorf("%w: lease broadcast: %v", ErrGeneration, err)
	}
	var res leaseResult
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("%w: lease broadcast: %v", ErrState, err)
	}
	if res.Stopped {
		// Every rank received the same broadcast: a joint stop, decided
		// collectively as a published stop order is (finish.go).
		w.leaseOpen = false
		w.leaseSaysStopped()
		return errJobStopped
	}
	if res.Err != "" {
		// No grant was handed out (or rank 0 could not tell): nothing is
		// leased that the ranks do not know of, unless the lease went
		// through and only its reply was lost, which the rejoin covers.
		return fmt.Errorf("%w: rank 0 could not lease: %s", ErrGeneration, res.Err)
	}
	for _, g := range res.Grants {
		r := rankOf(gen, g.WorkerID)
		if r < 0 {
			continue
		}
		for _, u := range g.Units {
			w.levels[r] += int(u.Pairs - u.Offset)
		}
		if g.WorkerID == w.id {
			w.queue.push(g.Units...)
		}
	}
	w.leaseOpen = false
	w.rec.Reclaim = nil
	if res.Complete {
		w.log.Debug("the coordinator reports every epoch done")
	}
	return nil
}

// leaseFor is rank 0's side: first the units a restored checkpoint's
// cursors name (each rank's partly consumed unit comes back to it), then one
// unit per round for every rank still short.
func (w *Worker) leaseFor(ctx context.Context, gen coordinator.GenerationInfo, deficit []int) (leaseResult, error) {
	var res leaseResult
	round := 0
	ask := func(asks []coordinator.LeaseAsk) (*coordinator.LeaseReply, error) {
		round++
		rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
		defer cancel()
		rep, err := w.coord.LeaseUnits(rctx, coordinator.LeaseRequest{
			Generation: gen.Number,
			RequestID:  fmt.Sprintf("%s-g%d-s%d-%d", w.instance, gen.Number, w.rec.Step+1, round),
			Asks:       asks,
		})
		if err != nil {
			return nil, err
		}
		for _, g := range rep.Grants {
			if r := rankOf(gen, g.WorkerID); r >= 0 {
				for _, u := range g.Units {
					deficit[r] -= int(u.Pairs - u.Offset)
				}
			}
		}
		res.Grants = append(res.Grants, rep.Grants...)
		res.Complete = res.Complete || rep.Complete
		return rep, nil
	}
	if len(w.rec.Reclaim) > 0 {
		var asks []coordinator.LeaseAsk
		for _, c := range w.rec.Reclaim {
			if c.Unit >= 0 && c.Rank < len(gen.Members) {
				asks = append(asks, coordinator.LeaseAsk{WorkerID: gen.Members[c.Rank].WorkerID, Count: 1})
			}
		}
		if len(asks) > 0 {
			if _, err := ask(asks); err != nil {
				return res, err
			}
		}
	}
	epochWait := time.Now().Add(w.cfg.EpochWait)
	emptyWait := time.Now().Add(w.cfg.GenerationTimeout)
	reported := false
	for round < 4096 {
		var asks []coordinator.LeaseAsk
		for r, d := range deficit {
			if d > 0 {
				asks = append(asks, coordinator.LeaseAsk{WorkerID: gen.Members[r].WorkerID, Count: 1})
			}
		}
		if len(asks) == 0 || res.Complete {
			return res, nil
		}
		rep, err := ask(asks)
		if err != nil {
			return res, err
		}
		granted := 0
		for _, g := range rep.Grants {
			granted += len(g.Units)
		}
		if granted > 0 || rep.Complete {
			continue
		}
		// Nothing pending. The coordinator learns that the job is complete
		// from a progress report marking the last units done: send one.
		if !reported && w.rec.Gen == gen.Number {
			w.report(ctx, gen, false)
			reported = true
			continue
		}
		left := false // does any rank still hold pairs for this step?
		for r, d := range deficit {
			left = left || d < rankBatch(w.job.GlobalBatch, len(deficit), r)
		}
		switch {
		case left && (!w.moreEpochs(ctx) || time.Now().After(epochWait)):
			return res, nil // a short step at the end of the data
		case !left && time.Now().After(emptyWait):
			return res, fmt.Errorf("worker: no pairs to lease for %v and the job is not complete", w.cfg.GenerationTimeout)
		}
		// The next epoch (the first, at the start of a job) may not be open yet.
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return res, errors.New("worker: lease did not converge")
}

// moreEpochs says whether an epoch after the lowest unfinished one remains.
func (w *Worker) moreEpochs(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	st, err := w.coord.Status(rctx)
	if err != nil || st.Job == nil {
		return false
	}
	return st.Epoch+1 < uint64(st.Job.Epochs)
}
