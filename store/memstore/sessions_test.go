package memstore_test

import (
	"testing"

	"github.com/guardhq/guard/session/sessiontest"
	"github.com/guardhq/guard/store/memstore"
)

func newSessions(*testing.T) sessiontest.Store { return memstore.NewSessions() }

func TestSessions(t *testing.T) { sessiontest.Run(t, newSessions) }

func TestSessionsConcurrent(t *testing.T) { sessiontest.RunConcurrent(t, newSessions) }
