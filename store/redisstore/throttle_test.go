package redisstore_test

import (
	"testing"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/auth/authtest"
)

func newThrottle(t *testing.T) auth.ThrottleStore {
	s, _, _ := open(t)
	return s
}

var authStores = authtest.Stores{Throttle: newThrottle}

func TestThrottle(t *testing.T) { authtest.Run(t, authStores) }

func TestThrottleConcurrent(t *testing.T) { authtest.RunConcurrent(t, authStores) }
