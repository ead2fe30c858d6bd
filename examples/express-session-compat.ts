import express from 'express';
import session from 'tether/express'; // was: import session from 'express-session'

const app = express();
app.use(session({ secret: process.env.SESSION_SECRET ?? 'keyboard cat', resave: false, saveUninitialized: false }));
app.get('/', (req, res) => {
  req.session.views = (req.session.views ?? 0) + 1;
  res.send(`views: ${req.session.views}`);
});
app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');

declare module 'express-session' {
  interface SessionData {
    views?: number;
  }
}
