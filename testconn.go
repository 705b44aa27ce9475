package emailconn

import (
	"crypto/tls"
	"net/netip"
	"time"
)

// tracer receives what happens while a session is established. A nil
// *tracer ignores everything; Test Connection passes one to build its
// report.
type tracer struct {
	stages []traceStage

	addrs     []netip.Addr
	remote    string
	tls       *tls.ConnectionState
	ehloLines []string
	ehloTLS   bool
	mechs     []string
	mech      string
}

type traceStage struct {
	stage      Stage
	start, end time.Time
	err        error
	skipped    string
}

func (t *tracer) stage(st Stage, start time.Time, err error) {
	t.stageSpan(st, start, time.Now(), err)
}

func (t *tracer) stageSpan(st Stage, start, end time.Time, err error) {
	if t == nil {
		return
	}
	t.stages = append(t.stages, traceStage{stage: st, start: start, end: end, err: err})
}

func (t *tracer) skip(st Stage, why string) {
	if t == nil {
		return
	}
	now := time.Now()
	t.stages = append(t.stages, traceStage{stage: st, start: now, end: now, skipped: why})
}

func (t *tracer) resolved(addrs []netip.Addr) {
	if t != nil {
		t.addrs = addrs
	}
}

func (t *tracer) connected(remote string) {
	if t != nil {
		t.remote = remote
	}
}

func (t *tracer) tlsDone(st tls.ConnectionState) {
	if t != nil {
		t.tls = &st
	}
}

func (t *tracer) ehlo(lines []string, afterTLS bool) {
	if t != nil {
		t.ehloLines, t.ehloTLS = lines, afterTLS
	}
}

func (t *tracer) offered(mechs []string) {
	if t != nil {
		t.mechs = mechs
	}
}

func (t *tracer) authenticated(mech string) {
	if t != nil {
		t.mech = mech
	}
}
