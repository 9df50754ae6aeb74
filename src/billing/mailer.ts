import nodemailer from 'nodemailer';
import type { Config } from '../config.js';

export type Mail = { to: string[]; subject: string; text: string };
export type SentMail = { messageId: string; accepted: string[]; rejected: string[] };

export type Mailer = {
  send(mail: Mail): Promise<SentMail>;
  close(): void;
};

/**
 * Mail over SMTP with nodemailer, from configuration (`SMTP_URL`, `MAIL_FROM`). Returns null when
 * no SMTP server is configured: callers then skip what they would have mailed, and say so.
 */
export function createMailer(mail: Config['mail']): Mailer | null {
  if (!mail.smtpUrl) return null;
  const transport = nodemailer.createTransport(mail.smtpUrl);
  return {
    async send(m) {
      const info = await transport.sendMail({ from: mail.from, to: m.to, subject: m.subject, text: m.text });
      const addr = (a: unknown) => (typeof a === 'string' ? a : (a as { address?: string })?.address ?? String(a));
      return { messageId: String(info.messageId), accepted: (info.accepted ?? []).map(addr), rejected: (info.rejected ?? []).map(addr) };
    },
    close: () => transport.close(),
  };
}
