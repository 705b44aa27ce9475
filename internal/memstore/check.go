package memstore

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The bounds of the Store contract (emailconn.Store's doc comment).
const (
	MaxKey   = 512 // bytes of UTF-8
	MaxOwner = 128 // bytes of UTF-8
	MinTTL   = time.Millisecond
	MaxLimit = 1 << 20 // limits and slots are below it
)

// CheckLease reports every problem with the arguments of Acquire (slot < 0
// skips the slot check) at once, in the words of the Store contract. The
// SQL store shares it so that every Store rejects the same arguments with
// the same errors.
func CheckLease(key string, limit int, owner string, ttl time.Duration) error {
	var errs []error
	errs = appendErr(errs, checkText("key", key, MaxKey))
	if limit < 1 {
		errs = append(errs, fmt.Errorf("emailconn: store: limit %d is below 1", limit))
	} else if limit > MaxLimit {
		errs = append(errs, fmt.Errorf("emailconn: store: limit %d is above %d", limit, MaxLimit))
	}
	errs = appendErr(errs, checkText("owner", owner, MaxOwner))
	errs = appendErr(errs, CheckTTL(ttl))
	return errors.Join(errs...)
}

// CheckSlot reports the problems with the arguments of Renew (ttl > 0) and
// Release (ttl 0: not checked).
func CheckSlot(key string, slot int, owner string, ttl time.Duration, renew bool) error {
	var errs []error
	errs = appendErr(errs, checkText("key", key, MaxKey))
	if slot < 0 {
		errs = append(errs, fmt.Errorf("emailconn: store: slot %d is negative", slot))
	} else if slot >= MaxLimit {
		errs = append(errs, fmt.Errorf("emailconn: store: slot %d is not below %d", slot, MaxLimit))
	}
	errs = appendErr(errs, checkText("owner", owner, MaxOwner))
	if renew {
		errs = appendErr(errs, CheckTTL(ttl))
	}
	return errors.Join(errs...)
}

// CheckKey reports a key that the contract does not allow (Load).
func CheckKey(key string) error { return checkText("key", key, MaxKey) }

// CheckSwap reports the problems with the arguments of Swap: a ttl of zero
// means never, a negative one or one below a millisecond is an error.
func CheckSwap(key string, version int64, ttl time.Duration) error {
	var errs []error
	errs = appendErr(errs, checkText("key", key, MaxKey))
	if version < 0 {
		errs = append(errs, fmt.Errorf("emailconn: store: version %d is negative", version))
	}
	if ttl != 0 {
		errs = appendErr(errs, CheckTTL(ttl))
	}
	return errors.Join(errs...)
}

// CheckTTL reports a lease or record ttl below one millisecond.
func CheckTTL(ttl time.Duration) error {
	if ttl < MinTTL {
		return fmt.Errorf("emailconn: store: ttl %v is below one millisecond", ttl)
	}
	return nil
}

// checkText checks a key or an owner: not empty, at most max bytes, valid
// UTF-8 without NUL (PostgreSQL's text cannot hold one). The value itself
// is not quoted: the error says what is wrong, not what was sent.
func checkText(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("emailconn: store: %s is empty", what)
	case len(s) > max:
		return fmt.Errorf("emailconn: store: %s is %d bytes, more than %d", what, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("emailconn: store: %s is not valid UTF-8", what)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("emailconn: store: %s contains a NUL byte", what)
	}
	return nil
}

func appendErr(errs []error, err error) []error {
	if err != nil {
		errs = append(errs, err)
	}
	return errs
}
