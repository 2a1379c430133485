// Symbol-keyed methods for the package's classes:
// - `for await (const ev of subscription)` (Subscription.next()/return() are implemented in Rust);
// - `for await (const page of session.pages(query, { pageSize }))` (Pages.next()/return() too);
// - `using ec = new EventChannel(...)` closes the channel, `await using session` logs out.
export function addExtras({ Subscription, EventChannel, Session, Pages }) {
  const dispose = Symbol.dispose ?? Symbol.for("Symbol.dispose");
  const asyncDispose = Symbol.asyncDispose ?? Symbol.for("Symbol.asyncDispose");
  Subscription.prototype[Symbol.asyncIterator] = function () {
    return this;
  };
  Pages.prototype[Symbol.asyncIterator] = function () {
    return this;
  };
  Subscription.prototype[dispose] = function () {
    this.close();
  };
  EventChannel.prototype[dispose] = function () {
    this.close();
  };
  Session.prototype[asyncDispose] = function () {
    return this.logout();
  };
}
