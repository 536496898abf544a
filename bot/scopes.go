package bot

// BotScopes are the OAuth scopes the bot's code uses, and exactly those that
// manifest.yml asks for (a test keeps the two equal):
//   - channels:read, groups:read: conversations.info in `risk-reset-bot
//     check`, to see that each configured public or private channel exists
//     and the bot is a member
//   - chat:write: the card, its updates, thread replies, audit records
//   - commands: the /risk-reset slash command
//   - usergroups:read: usergroups.users.list for group-based permissions
//   - users:read, users:read.email: users.info to turn a mention into an email
var BotScopes = []string{"channels:read", "chat:write", "commands", "groups:read", "usergroups:read", "users:read", "users:read.email"}
