package bot

// BotScopes are the OAuth scopes the bot's code uses, and exactly those that
// manifest.yml asks for (a test keeps the two equal):
//   - chat:write: the card, its updates, thread replies, audit records
//   - commands: the /risk-reset slash command
//   - usergroups:read: usergroups.users.list for group-based permissions
//   - users:read, users:read.email: users.info to turn a mention into an email
var BotScopes = []string{"chat:write", "commands", "usergroups:read", "users:read", "users:read.email"}
