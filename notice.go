package guard

import (
	"context"
	"time"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// MaxBackgroundNotices bounds the security notices (of a password
// changed, reset or expired, an email changed, a factor added or removed,
// recovery codes used or made, a code used again, an account locked)
// mailed in the background at once, by each Guard (each replica). A flood
// of notices, or a slow mail server (a send may take a minute), holds at
// most this many goroutines (and 8 more for lock notices, below), and no
// one address holds more than MaxNoticesPerRecipient of them.
//
// A notice's call, its change already made, never waits while a slot is
// free. With every slot taken it waits for one to come free for at most
// NoticeSlotWait, or until its context's deadline if that comes sooner
// (the host's own bound on the request), however soon the context is
// cancelled: the client of the request controls cancellation (dropping
// the connection cancels it), and must not be able to cancel the alarm
// about what the request did. When none comes free in time the call
// returns as it would have (the change stays made) and the notice is
// dropped, counted in DroppedNotices. So in normal operation every notice
// goes out, at worst a little late, and a full pool slows the calls that
// cause notices by NoticeSlotWait at most.
//
// ForgotPassword's emails have slots of their own (MaxBackgroundResets).
// The other emails and text messages Guard sends (invitations,
// email-change links and the notice of an address taken, one-time sign-in
// codes) are sent in the goroutine of the call that causes them, which
// waits for the send and reports its failure: Guard starts no goroutine
// for them, and the host's own concurrency bounds them.
//
// An account lock's notice waits for no slot: a sign-in as an invented
// name locks no one's mailbox, so a wait there would be a real account's
// alone and tell, under a flood, that the address has one (the lock itself
// stays on record, as login.locked). With every slot taken it takes one
// of 8 more slots kept for lock notices alone, so that other notices
// cannot crowd it out; with those taken too (a flood of locks of many
// accounts) it is dropped at once, and counted.
const MaxBackgroundNotices = 64

// MaxNoticesPerRecipient bounds the security notices to one address
// (compared in canonical form, as auth.CanonicalEmail makes it: trimmed,
// case-folded, NFC, so that two spellings of one mailbox share it) that
// hold or wait for a background slot at once (MaxBackgroundNotices), so
// that a loop of calls on one account (say RegenerateRecoveryCodes while
// the mail server is slow) cannot take the slots that notices to others
// need. A notice to an
// address that has this many waits in that address's queue instead, and
// its call returns at once; each of the address's sends takes the next
// from the queue when it ends, oldest first, in the same slot. The queue
// holds MaxQueuedNotices: a notice beyond them pushes the oldest queued
// out, dropped and counted in DroppedNotices, so the latest notice to an
// address (the change of its account's email, after a flood of others to
// it) is the one kept. When the address's last notice drops for want of a
// slot (NoticeSlotWait), its queue is dropped with it, and counted. The
// counts live in the memory of each Guard, an entry per address with a
// notice in flight, removed with its last.
const MaxNoticesPerRecipient = 4

// MaxQueuedNotices is the number of security notices to one address that
// wait behind its MaxNoticesPerRecipient sends; see there.
const MaxQueuedNotices = 16

// NoticeSlotWait is the longest a call that causes a security notice waits
// for a background slot when all MaxBackgroundNotices are taken (see
// there). The wait ends sooner at the deadline of the call's context, if
// it has one, but not when the context is cancelled (or ends at a deadline
// further off).
const NoticeSlotWait = 3 * time.Second

// lockNoticeSlots is the number of background slots that only lock
// notices take, once every one of MaxBackgroundNotices is taken.
const lockNoticeSlots = 8

// DroppedNotices returns the number of security notices the Guard has
// dropped since New: notices that found no slot (MaxBackgroundNotices)
// in NoticeSlotWait or by their context's deadline (a lock notice: at
// once), or were pushed out of a full queue of notices to one address
// (MaxNoticesPerRecipient), or were waiting for a slot (or queued behind
// one that was) when Close began, or were caused while it ran, or were
// queued behind a send, or being sent and failed, when a Shutdown's
// context ended (see Shutdown). ForgotPassword's emails are counted apart, in DroppedResetMails. It
// only grows: a host may export it as a metric, and look at its mail
// server (or at a flood of notices to one address) when it moves.
func (g *Guard) DroppedNotices() int64 { return g.dropped.Load() }

// DroppedResetMails returns the number of ForgotPassword's emails (reset
// links, and the note to sign in through SSO) the Guard has dropped since
// New because every one of their slots was taken (MaxBackgroundResets),
// or because a Shutdown's context ended before they were sent: each
// request whose email was dropped before it was handed to a slot is
// recorded as a refused password.reset_requested (reason send_failed,
// Meta dropped "true"), its link never made; one whose send Shutdown cut
// short (the sender returned an error once its context ended) is recorded
// as any failed send (reason send_failed), if the audit store still takes
// it, and counted here too. It only
// grows: a host may export it as a metric apart from DroppedNotices (a
// burst of reset requests, or a slow mail server, moves it).
func (g *Guard) DroppedResetMails() int64 { return g.droppedResets.Load() }

// notify emails u a security notice about their account at u.Email (see
// notifyOnce).
func (g *Guard) notify(ctx context.Context, u auth.User, subject, text string) {
	g.notifyOnce(ctx, false, "", u, u.Email, subject, text)
}

// notifyOnce emails a security notice about u's account to the address to
// (u.Email, or another address of theirs: a removed email factor's), in
// the background, when Recovery.Email is configured and u hears notices
// (hearsNotices: only while active). A failure to send is not the
// caller's. The notice takes a background slot (MaxBackgroundNotices), or
// a place in to's queue (MaxNoticesPerRecipient); with every slot taken
// it waits for one NoticeSlotWait at most, or until ctx's deadline if
// sooner, never ended by ctx's cancellation (only its values are kept),
// and is dropped and counted (DroppedNotices) when none comes free. A
// lock notice (lock) waits for none: it takes a free slot, or one kept
// for lock notices, or is dropped. A key other than ""
// sends the notice at most once an hour per key: the background send
// first counts a hit on key in the link limits' store (Recovery.Limits),
// and sends only the hour's first. A store failure sends nothing. The
// count is made in the background, not before a slot is taken, so that
// the caller never waits on it (the lock notice's caller answers a
// sign-in, which must take no longer for an account than for an invented
// name); a dropped notice is not counted, and the next is sent.
func (g *Guard) notifyOnce(ctx context.Context, lock bool, key string, u auth.User, to, subject, text string) {
	if g.recovery.Email == nil || !hearsNotices(u) {
		return
	}
	g.sendNotice(ctx, lock, to, func(ctx context.Context) error {
		if key != "" {
			if n, err := g.recovery.rates.Hit(ctx, key, g.now(), time.Hour); err != nil || n > 1 {
				return err
			}
		}
		return g.recovery.Email.SendEmail(ctx, mfa.Message{To: to, Subject: subject, Text: text})
	})
}

// notice is a security notice to send: send, given a context with the
// values of ctx, never its end, and a minute (workContext). send returns
// nil once the notice is sent, or when there is none to send, and an
// error when it failed: one that fails once a Shutdown's context ended
// is counted dropped.
type notice struct {
	ctx  context.Context
	send func(ctx context.Context) error
}

// noticeQueue is one address's notices: active that hold or wait for a
// background slot (MaxNoticesPerRecipient at most), queued behind them,
// oldest first (MaxQueuedNotices at most).
type noticeQueue struct {
	active int
	queued []notice
}

// sendNotice runs send, a notice to the address to, in the background
// (Close waits for it), as notifyOnce says. While a Close runs, or when
// one begins while the notice waits for a slot, the notice is dropped and
// counted. When a Shutdown's context ends first (abort), the send running
// is ended (its context), and counted dropped if it then fails, and the
// notices queued behind it are dropped and counted, unsent.
func (g *Guard) sendNotice(ctx context.Context, lock bool, to string, send func(ctx context.Context) error) {
	closing, abort, ok := g.enterBackground()
	if !ok {
		g.dropped.Add(1)
		return
	}
	n := notice{ctx: context.WithoutCancel(ctx), send: send}
	key := canonicalAddress(to)
	g.noticeMu.Lock()
	q := g.noticeTo[key]
	if q == nil {
		q = &noticeQueue{}
		g.noticeTo[key] = q
	}
	if q.active >= MaxNoticesPerRecipient {
		if len(q.queued) == MaxQueuedNotices {
			q.queued = append(q.queued[:0], q.queued[1:]...)
			g.dropped.Add(1)
		}
		q.queued = append(q.queued, n)
		g.noticeMu.Unlock()
		g.bg.Done()
		return
	}
	q.active++
	g.noticeMu.Unlock()

	slots := g.noticeSlot(lock, slotWait(ctx), closing)
	if slots == nil {
		g.noticeDropped(key)
		g.bg.Done()
		return
	}
	go func() {
		defer g.bg.Done()
		defer func() { <-slots }()
		for ; n.send != nil; n = g.nextNotice(key, abort.Err() != nil) {
			if abort.Err() != nil {
				g.dropped.Add(1)
				continue
			}
			bctx, cancel := workContext(n.ctx, abort)
			err := n.send(bctx)
			cancel()
			if err != nil && abort.Err() != nil {
				g.dropped.Add(1) // cut short by Shutdown
			}
		}
	}()
}

// noticeSlot takes a background slot for a notice and returns the
// channel to free it on, or nil when it found none: a free one of
// MaxBackgroundNotices, else, for a lock notice (lock), a free one of
// lockNoticeSlots, else, for another, the first of MaxBackgroundNotices
// to come free in wait, unless closing is closed first (a Close began). A
// slot taken as Close begins is given back: the notice must not start.
func (g *Guard) noticeSlot(lock bool, wait time.Duration, closing <-chan struct{}) chan struct{} {
	slots := g.takeNoticeSlot(lock, wait, closing)
	if slots == nil {
		return nil
	}
	select {
	case <-closing:
		<-slots
		return nil
	default:
		return slots
	}
}

// takeNoticeSlot is noticeSlot but for the check, once a slot is taken,
// that no Close began meanwhile.
func (g *Guard) takeNoticeSlot(lock bool, wait time.Duration, closing <-chan struct{}) chan struct{} {
	select {
	case g.notices <- struct{}{}:
		return g.notices
	default:
	}
	if lock {
		select {
		case g.lockNotices <- struct{}{}:
			return g.lockNotices
		default:
			return nil
		}
	}
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case g.notices <- struct{}{}:
		return g.notices
	case <-t.C:
		return nil
	case <-closing:
		return nil
	}
}

// slotWait is how long a notice caused by a call with context ctx waits
// for a slot: NoticeSlotWait, or until ctx's deadline if that is sooner.
// Only the deadline counts, never ctx's cancellation (see
// MaxBackgroundNotices).
func slotWait(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return min(NoticeSlotWait, time.Until(d))
	}
	return NoticeSlotWait
}

// nextNotice returns the oldest notice queued for the address key, for
// the send of one of its active notices that just ended; when none is
// queued, that notice is no longer active, and the zero notice is
// returned. When abort (a Shutdown's context ended), the notices queued
// are dropped and counted, and the zero notice is returned.
func (g *Guard) nextNotice(key string, abort bool) notice {
	g.noticeMu.Lock()
	defer g.noticeMu.Unlock()
	q := g.noticeTo[key]
	if abort {
		g.dropped.Add(int64(len(q.queued)))
		clear(q.queued)
		q.queued = nil
	}
	if len(q.queued) > 0 {
		n := q.queued[0]
		q.queued[0] = notice{}
		q.queued = q.queued[1:]
		return n
	}
	g.leaveNotice(key, q)
	return notice{}
}

// noticeDropped counts an active notice to the address key that found no
// slot as dropped, and, when it was the address's last, its queue too.
func (g *Guard) noticeDropped(key string) {
	g.noticeMu.Lock()
	defer g.noticeMu.Unlock()
	q := g.noticeTo[key]
	g.dropped.Add(1)
	if g.leaveNotice(key, q) {
		g.dropped.Add(int64(len(q.queued)))
	}
}

// leaveNotice ends an active notice of q, the address key's, and removes
// q when it was the last: it reports whether it was. g.noticeMu is held.
func (g *Guard) leaveNotice(key string, q *noticeQueue) bool {
	q.active--
	if q.active > 0 {
		return false
	}
	delete(g.noticeTo, key)
	return true
}

// hearsNotices reports whether mail about u's account (a security notice,
// the notice of an email change to their address) goes to u: only while
// u is active. A deactivated account cannot sign in to act on a notice,
// its owner may have left (their mailbox forwarded to someone else), and
// ForgotPassword mails it no link either.
func hearsNotices(u auth.User) bool { return u.Status == auth.StatusActive }
