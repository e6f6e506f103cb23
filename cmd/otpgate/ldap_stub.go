package main

import (
	"time"

	"github.com/otpgate/otpgate/policy"
)

type ldapConfig struct {
	Servers []string      `mapstructure:"servers"`
	Timeout time.Duration `mapstructure:"timeout"`
}

func (c *config) checkLDAP(p *problems) policy.PasswordChecker { return nil }
