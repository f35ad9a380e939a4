package pgstore_test

import (
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/audit/audittest"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/auth/authtest"
	"github.com/guardhq/guard/guardtest"
	"github.com/guardhq/guard/session/sessiontest"
)

func newSessions(t *testing.T) sessiontest.Store { return newStore(t).Sessions }
func newAudit(t *testing.T) audit.Store          { return newStore(t).Audit }
func newTenants(t *testing.T) guard.TenantStore  { return newStore(t).Tenants }

func TestSessions(t *testing.T)           { sessiontest.Run(t, newSessions) }
func TestSessionsConcurrent(t *testing.T) { sessiontest.RunConcurrent(t, newSessions) }
func TestAudit(t *testing.T)              { audittest.Run(t, newAudit) }
func TestAuditConcurrent(t *testing.T)    { audittest.RunConcurrent(t, newAudit) }
func TestTenants(t *testing.T)            { guardtest.Run(t, newTenants) }
func TestTenantsConcurrent(t *testing.T)  { guardtest.RunConcurrent(t, newTenants) }

func newUsers(t *testing.T) authtest.Users        { return newStore(t).Users }
func newThrottle(t *testing.T) auth.ThrottleStore { return newStore(t).Throttle }

var authStores = authtest.Stores{Users: newUsers, Throttle: newThrottle}

func TestAuthStores(t *testing.T)           { authtest.Run(t, authStores) }
func TestAuthStoresConcurrent(t *testing.T) { authtest.RunConcurrent(t, authStores) }
