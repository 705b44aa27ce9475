package emailconn

// The delivery ledger's records: a record's value in the store, as JSON,
// and its conversions from and to the Receipt and the errors of a send.

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/emersion/go-smtp"
)

// ledgerRecord is a record's value in the store, as JSON.
type ledgerRecord struct {
	V          int            `json:"v"`
	State      string         `json:"state"`
	MessageID  string         `json:"messageId,omitempty"`
	Connection string         `json:"connection,omitempty"`
	Node       string         `json:"node,omitempty"`
	Started    time.Time      `json:"started"`
	Updated    time.Time      `json:"updated"`
	LeaseMS    int64          `json:"leaseMs,omitempty"` // "sending": valid this long after Updated
	Receipt    *ledgerReceipt `json:"receipt,omitempty"`
	Refusal    *ledgerRefusal `json:"refusal,omitempty"`
	Detail     string         `json:"detail,omitempty"`
}

type ledgerReceipt struct {
	Reply        string        `json:"reply,omitempty"`
	QueueID      string        `json:"queueId,omitempty"`
	Accepted     []string      `json:"accepted,omitempty"`
	Rejected     []ledgerReply `json:"rejected,omitempty"`
	Server       string        `json:"server,omitempty"`
	TLSVersion   string        `json:"tls,omitempty"`
	Mechanism    string        `json:"mechanism,omitempty"`
	Attempts     int           `json:"attempts,omitempty"`
	DurationMS   int64         `json:"durationMs,omitempty"`
	WaitedMS     int64         `json:"waitedMs,omitempty"`
	Transactions int           `json:"transactions,omitempty"`
}

// ledgerReply is a server's reply; Address is set for a recipient's.
type ledgerReply struct {
	Address  string `json:"address,omitempty"`
	Code     int    `json:"code"`
	Enhanced [3]int `json:"enhanced,omitzero"`
	Message  string `json:"message,omitempty"`
}

// ledgerRefusal is a permanent refusal: one reply (ErrRefused) or the
// refused recipients (ErrRecipientRejected).
type ledgerRefusal struct {
	Stage    Stage         `json:"stage"`
	Server   string        `json:"server,omitempty"`
	Reply    *ledgerReply  `json:"reply,omitempty"`
	Rejected []ledgerReply `json:"rejected,omitempty"`
	Accepted int           `json:"accepted,omitempty"` // recipients accepted before the message was given up (RequireAllRecipients)
}

// refusalOf returns the permanent refusal of the message in err, which the
// ledger keeps: a 5xx reply after DATA, or the recipients refused with
// 5xx replies and none accepted (or RequireAllRecipients). Refusals of the sender at MAIL FROM, throttling replies and
// every other failure are not kept, so that a retry after the cause was
// fixed (an administrator's change of the connection) is sent.
func refusalOf(err error) *ledgerRefusal {
	var e *Error
	if !errors.As(err, &e) || e.throttled || e.paused || e.Temporary() {
		return nil
	}
	var re *RecipientsError
	var se *SMTPError
	switch {
	case e.Stage == StageRcpt && errors.As(e.Err, &re):
		ref := &ledgerRefusal{Stage: e.Stage, Server: e.Server, Accepted: re.Accepted}
		for _, r := range re.Rejected {
			if rcptTemporary(r.Err) {
				return nil // this recipient may be accepted later
			}
			lr := toLedgerReply(r.Err)
			lr.Address = r.Address
			ref.Rejected = append(ref.Rejected, lr)
		}
		return ref
	case e.Stage == StageData && errors.Is(err, ErrRefused) && errors.As(e.Err, &se):
		lr := toLedgerReply(se)
		return &ledgerRefusal{Stage: e.Stage, Server: e.Server, Reply: &lr}
	}
	return nil
}

func toLedgerReply(se *SMTPError) ledgerReply {
	if se == nil {
		return ledgerReply{}
	}
	return ledgerReply{Code: se.Code, Enhanced: se.EnhancedCode, Message: se.Message}
}

func (r ledgerReply) smtpError() *SMTPError {
	ge := &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode(r.Enhanced), Message: r.Message}
	if r.Enhanced == [3]int{} {
		ge.EnhancedCode = smtp.NoEnhancedCode
	}
	return &SMTPError{Code: r.Code, EnhancedCode: r.Enhanced, Message: r.Message, err: ge}
}

func toLedgerReceipt(rc *Receipt) *ledgerReceipt {
	if rc == nil {
		return nil
	}
	lr := &ledgerReceipt{Reply: rc.Reply, QueueID: rc.QueueID, Accepted: rc.Accepted, Server: rc.Server,
		TLSVersion: rc.TLSVersion, Mechanism: rc.Mechanism, Attempts: rc.Attempts,
		DurationMS: rc.Duration.Milliseconds(), WaitedMS: rc.Waited.Milliseconds(), Transactions: rc.Transactions}
	for _, r := range rc.Rejected {
		x := toLedgerReply(r.Err)
		x.Address = r.Address
		lr.Rejected = append(lr.Rejected, x)
	}
	return lr
}

// receipt is the record's Receipt, marked as a replay; nil without one.
func (r *ledgerRecord) receipt() *Receipt {
	lr := r.Receipt
	if lr == nil {
		return nil
	}
	rc := &Receipt{MessageID: r.MessageID, Reply: lr.Reply, QueueID: lr.QueueID, Accepted: lr.Accepted,
		Server: lr.Server, TLSVersion: lr.TLSVersion, Mechanism: lr.Mechanism, Attempts: lr.Attempts,
		Duration: time.Duration(lr.DurationMS) * time.Millisecond, Waited: time.Duration(lr.WaitedMS) * time.Millisecond,
		Transactions: lr.Transactions, Replayed: true}
	for _, x := range lr.Rejected {
		rc.Rejected = append(rc.Rejected, RecipientError{Address: x.Address, Err: x.smtpError()})
	}
	return rc
}

// delivery is the record as the caller sees it.
func (r *ledgerRecord) delivery() *Delivery {
	d := &Delivery{State: r.State, MessageID: r.MessageID, Connection: r.Connection, Node: r.Node,
		Started: r.Started, Updated: r.Updated, Detail: r.Detail, Receipt: r.receipt()}
	if d.Receipt != nil {
		d.Receipt.Replayed = false
	}
	return d
}

func mustJSON(r *ledgerRecord) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic("emailconn: encoding a ledger record: " + err.Error()) // only strings, times and numbers: cannot fail
	}
	return b
}
