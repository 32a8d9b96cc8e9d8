# ruff: noqa: E501 - one CSS rule per line reads best
"""The status page's styles: inline (no assets from the internet), plain, GOV.UK-like:
GDS colours, a black header, 19px text, yellow focus, tags, tables with row rules."""

CSS = """
*,*::before,*::after{box-sizing:border-box}
html{font-family:Arial,Helvetica,sans-serif;font-size:19px;line-height:1.32;color:#0b0c0c;background:#fff}
body{margin:0}
.width{max-width:1100px;margin:0 auto;padding:0 15px}
a{color:#1d70b8}a:visited{color:#4c2c92}a:hover{color:#003078}
a:focus,button:focus,input:focus,summary:focus{outline:3px solid transparent;background:#fd0;color:#0b0c0c;box-shadow:0 -2px #fd0,0 4px #0b0c0c;text-decoration:none}
input:focus{box-shadow:inset 0 0 0 2px #0b0c0c;outline:3px solid #fd0;background:#fff}
.skip{position:absolute;left:-9999px}.skip:focus{position:static;display:block;padding:10px}
.header{background:#0b0c0c;color:#fff;border-bottom:10px solid #1d70b8;padding:10px 0}
.header .width{display:flex;gap:20px;align-items:baseline;flex-wrap:wrap}
.brand{color:#fff;font-weight:700;font-size:24px;text-decoration:none}
.brand:visited{color:#fff}.service{font-size:19px}
.signout{margin-left:auto;font-size:16px}.signout span{margin-right:6px}
.link{background:none;border:0;color:#fff;text-decoration:underline;font:inherit;cursor:pointer;padding:0}
main{padding:30px 15px 20px;display:block}
h1{font-size:36px;margin:0 0 30px}h2{font-size:27px;margin:40px 0 15px}.h-s{font-size:19px;margin:15px 0 5px}
.muted{color:#505a5f;font-weight:400}.hint{color:#505a5f}
code{font-family:monospace;font-size:16px;background:#f3f2f1;padding:0 3px}
.header code{background:none;color:#fff}
.table{width:100%;border-collapse:collapse;margin-bottom:20px;font-size:16px}
.table th,.table td{text-align:left;vertical-align:top;padding:10px 20px 10px 0;border-bottom:1px solid #b1b4b6}
.table th{font-weight:700}
.visually-hidden{position:absolute!important;width:1px!important;height:1px!important;overflow:hidden!important;clip:rect(0 0 0 0)!important;white-space:nowrap!important}
.tag{display:inline-block;padding:2px 8px;font-size:14px;font-weight:700;letter-spacing:.5px;text-transform:uppercase}
.tag-green{background:#cce2d8;color:#005a30}.tag-red{background:#f6d7d2;color:#942514}
.tag-yellow{background:#fff7bf;color:#594d00}.tag-grey{background:#eeefef;color:#383f43}
.button{font:inherit;font-size:19px;background:#00703c;color:#fff;border:0;box-shadow:0 2px 0 #002d18;padding:8px 12px;cursor:pointer;margin:0 5px 5px 0}
.button:hover{background:#005a30}.button:focus{background:#fd0;color:#0b0c0c;box-shadow:0 2px 0 #0b0c0c}
.button-small{font-size:16px;padding:4px 10px}.button-warning{background:#d4351c;box-shadow:0 2px 0 #55150b}
.inline{display:inline}
.group{margin-bottom:30px}.group-error{border-left:5px solid #d4351c;padding-left:15px}
label{display:block;font-weight:700;margin-bottom:5px}
.input{font:inherit;width:100%;max-width:40em;padding:5px;border:2px solid #0b0c0c;height:40px}
.field-error{color:#d4351c;font-weight:700;margin:0 0 10px}
.error-summary{border:5px solid #d4351c;padding:15px 20px;margin-bottom:30px}
.error-summary h2{margin:0 0 15px;font-size:24px}.error-summary a{color:#d4351c;font-weight:700}
.banner{border:5px solid #00703c;padding:10px 20px;margin-bottom:30px}
.list{padding-left:20px}.list li{margin-bottom:5px}
.contents{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:5px 20px}
.counts{list-style:none;padding:0;display:flex;gap:30px;flex-wrap:wrap}
.count{display:block;font-size:36px;font-weight:700}
.back{display:inline-block;margin-bottom:20px}
.details summary{color:#1d70b8;text-decoration:underline;cursor:pointer}
.footer{border-top:1px solid #b1b4b6;padding:20px 15px;color:#505a5f;font-size:16px}
"""
