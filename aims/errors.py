from schemas.errors import UserError

# The CLI's name for a user-facing failure; any layer's (a bad policy file, say) exits with status 2.
CliError = UserError
