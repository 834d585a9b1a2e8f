# No provider of its own: the modules it calls declare theirs, and the environment root
# configures them (they reach those modules through this one by inheritance).
terraform {
  required_version = ">= 1.6.0, < 2.0.0"
}
