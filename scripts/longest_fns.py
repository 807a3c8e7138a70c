"""Usage: scripts/longest_fns.py N FILE.rs...: the N longest functions (lines from the `fn` line to its closing brace; braces in strings, characters and comments ignored), as "lines name file line"."""
import re, sys
def strip(line, state):
    out=[]; i=0
    while i < len(line):
        c=line[i]
        if state['block']:
            if line.startswith('*/', i): state['block']=False; i+=2; continue
            i+=1; continue
        if state['str']:
            if c=='\\': i+=2; continue
            if c=='"': state['str']=False
            i+=1; continue
        if line.startswith('//', i): break
        if line.startswith('/*', i): state['block']=True; i+=2; continue
        if c=='"': state['str']=True; i+=1; continue
        if c=="'" and re.match(r"'(\\.|[^\\'])'", line[i:]):
            m=re.match(r"'(\\.|[^\\'])'", line[i:]); i+=len(m.group(0)); continue
        out.append(c); i+=1
    return ''.join(out)
res=[]
for path in sys.argv[2:]:
    lines=open(path).read().split('\n'); state={'block':False,'str':False}
    stack=[]; depth=0
    for n,l in enumerate(lines,1):
        code=strip(l,state)
        m=re.search(r'\bfn\s+(\w+)', code)
        if m and not code.rstrip().endswith(';'):
            stack.append((m.group(1), n, depth))
        for ch in code:
            if ch=='{': depth+=1
            elif ch=='}':
                depth-=1
                if stack and depth==stack[-1][2]:
                    name,start,_=stack.pop(); res.append((n-start+1,name,path,start))
res.sort(reverse=True)
for r in res[:int(sys.argv[1])]: print(*r)
